// Reading one image for a running mount (QMP image-add) the way the YAML
// file is read, the checks against the images mounted, and which settings
// a re-read file changed (SIGHUP).

#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "config/config_loader.h"
#include "test_support.h"

namespace corfs::config {
namespace {

namespace fs = std::filesystem;
using corfs::testing::TempDir;

class ImageConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Touch("base.raw");
    Touch("other.raw");
    fs::create_directories(dir_.File("overlays"));
    Write("vms.yaml", R"(
defaults:
  mode: 0600
  stream: {speed: 10M}
templates:
  base: base.raw
images:
  broken.img: {overlay: overlays/broken.img, backing: [missing.raw]}
)");
  }
  void Touch(const std::string& name) {
    int fd = ::open(dir_.File(name).c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::ftruncate(fd, 1 << 20), 0);
    ::close(fd);
  }
  void Write(const std::string& name, const std::string& text) { std::ofstream(dir_.File(name)) << text; }
  Status Load(const std::string& name, const std::string& keys, ImageConfig* out) {
    return LoadImageConfig(dir_.File("vms.yaml"), name, keys, "image-add", {}, out);
  }

  TempDir dir_;
};

TEST_F(ImageConfigTest, ReadsAsTheFileWouldWithItsDefaultsAndTemplates) {
  ImageConfig image;
  // JSON, as QMP sends it; relative paths are the file's folder's. The
  // file's own broken image is not read.
  Status loaded =
      Load("new.img", R"({"overlay":"overlays/new.img","backing":["base"],"stream":{"auto":"true"}})", &image);
  ASSERT_TRUE(loaded.ok()) << loaded.message();
  EXPECT_EQ(image.name, "new.img");
  EXPECT_EQ(image.overlay_path, dir_.File("overlays/new.img"));
  ASSERT_EQ(image.backing.size(), 1u);
  EXPECT_EQ(image.backing[0].path, dir_.File("base.raw"));
  EXPECT_EQ(image.mode, 0600u);
  EXPECT_EQ(image.stream.speed, 10u << 20);
  EXPECT_TRUE(image.stream.auto_start);
}

TEST_F(ImageConfigTest, MistakesAreNamedWithoutALine) {
  ImageConfig image;
  Status status = Load("new.img", R"({"overlay":"overlays/new.img","backing":["base"],"sise":"1M"})", &image);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("image-add: images.new.img: unknown key 'sise' (did you mean 'size'?)"),
            std::string::npos)
      << status.message();
  status = Load("new.img", R"({"overlay":"overlays/new.img","backing":["missing.raw"]})", &image);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("missing.raw"), std::string::npos) << status.message();
  status = Load("a/b", R"({"overlay":"overlays/new.img","backing":["base"]})", &image);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("must not contain '/'"), std::string::npos) << status.message();
  status = Load("new.img", R"({"overlay":"overlays/new.img")", &image);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("image-add:"), std::string::npos) << status.message();
  EXPECT_EQ(image.name, "");
}

TEST_F(ImageConfigTest, ABrokenFileIsNamedAsSuch) {
  Write("vms.yaml", "defaults: [\n");
  ImageConfig image;
  Status status = Load("new.img", R"({"overlay":"overlays/new.img","size":"1M"})", &image);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find(dir_.File("vms.yaml") + ":"), std::string::npos) << status.message();
}

TEST_F(ImageConfigTest, JoiningImageIsCheckedAgainstTheMountedOnes) {
  ImageConfig live;
  ASSERT_TRUE(Load("live.img", R"({"overlay":"overlays/live.img","backing":["base"]})", &live).ok());
  ImageConfig image;
  ASSERT_TRUE(Load("new.img", R"({"overlay":"overlays/new.img","backing":["other.raw"]})", &image).ok());
  EXPECT_TRUE(CheckJoiningImage(image, {live}, dir_.File("mnt")).ok());

  ImageConfig same_name = image;
  same_name.name = "live.img";
  EXPECT_EQ(CheckJoiningImage(same_name, {live}, "").code(), EEXIST);
  ImageConfig same_overlay = image;
  same_overlay.overlay_path = live.overlay_path;
  EXPECT_EQ(CheckJoiningImage(same_overlay, {live}, "").code(), EBUSY);
  ImageConfig over_live = image;
  over_live.backing = {{live.overlay_path, ""}};
  EXPECT_FALSE(CheckJoiningImage(over_live, {live}, "").ok());
  ImageConfig under_live = image;
  under_live.overlay_path = live.backing[0].path;
  EXPECT_FALSE(CheckJoiningImage(under_live, {live}, "").ok());
  ImageConfig inside = image;
  inside.overlay_path = dir_.File("mnt/new.img");
  Status status = CheckJoiningImage(inside, {live}, dir_.File("mnt"));
  EXPECT_NE(status.message().find("inside the mountpoint"), std::string::npos) << status.message();
}

TEST_F(ImageConfigTest, ChangedKeysNameWhatDiffers) {
  ImageConfig a;
  ASSERT_TRUE(Load("a.img", R"({"overlay":"overlays/a.img","backing":["base"]})", &a).ok());
  EXPECT_TRUE(ChangedKeys(a, a).empty());
  ImageConfig b = a;
  b.read_only = true;
  b.stream.speed = 0;
  b.write_threshold.kind = WriteThreshold::Kind::kBytes;
  b.write_threshold.bytes = 1;
  EXPECT_EQ(ChangedKeys(a, b), (std::vector<std::string>{"read_only", "write_threshold", "stream.speed"}));
}

}  // namespace
}  // namespace corfs::config
