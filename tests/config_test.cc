// The config layer: YAML -> MountConfig. Good files give the typed values
// (paths resolved, templates expanded, defaults merged); every kind of bad
// input gives a failed Status naming FILE:LINE:COLUMN and what is wrong.

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "config/config_loader.h"
#include "test_support.h"

namespace corfs::config {
namespace {

namespace fs = std::filesystem;
using corfs::testing::TempDir;

constexpr uint64_t kKiB = 1024;
constexpr uint64_t kMiB = 1024 * kKiB;
constexpr uint64_t kGiB = 1024 * kMiB;

// Text of a raw string literal without its first newline, so that line 1 of
// the YAML is the first line written in the test.
std::string Yaml(std::string_view text) {
  if (!text.empty() && text.front() == '\n') text.remove_prefix(1);
  return std::string(text);
}

// Where an error is expected on its line: a column (1-based), or the first
// occurrence of a piece of text on that line.
struct Column {
  Column(int number) : number(number) {}       // NOLINT: implicit on purpose
  Column(const char* token) : token(token) {}  // NOLINT
  int number = 0;
  std::string token;
};

class ConfigTest : public ::testing::Test {
 protected:
  // Creates dir/name (and its folders) as a sparse file of `size` bytes.
  std::string Touch(const std::string& name, uint64_t size = kMiB) {
    fs::path path = fs::path(dir_.path()) / name;
    fs::create_directories(path.parent_path());
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    EXPECT_GE(fd, 0) << path;
    EXPECT_EQ(::ftruncate(fd, static_cast<off_t>(size)), 0);
    ::close(fd);
    return path.string();
  }
  std::string Path(const std::string& name) const { return dir_.path() + "/" + name; }

  Status Parse(const std::string& text, MountConfig* out) {
    return ParseMountConfig(text, "vms.yaml", dir_.path(), out);
  }
  MountConfig ParseOk(const std::string& text) {
    MountConfig cfg;
    Status status = Parse(text, &cfg);
    EXPECT_TRUE(status.ok()) << status.message();
    return cfg;
  }
  // Parsing fails; the message has "vms.yaml:LINE:COLUMN: " and every word.
  std::string ExpectError(const std::string& text, int line, const Column& at, const std::vector<std::string>& words) {
    int column = at.number;
    if (!at.token.empty()) {
      std::istringstream lines(text);
      std::string line_text;
      for (int i = 0; i < line; ++i) std::getline(lines, line_text);
      size_t found = line_text.find(at.token);
      EXPECT_NE(found, std::string::npos) << "no '" << at.token << "' on line " << line << " of:\n" << text;
      column = static_cast<int>(found) + 1;
    }
    MountConfig cfg;
    cfg.source_file = "untouched";
    Status status = Parse(text, &cfg);
    EXPECT_FALSE(status.ok()) << "accepted:\n" << text;
    if (status.ok()) return "";
    const std::string where = "vms.yaml:" + std::to_string(line) + ":" + std::to_string(column) + ": ";
    EXPECT_NE(status.message().find(where), std::string::npos) << "want " << where << " in:\n" << status.message();
    for (const std::string& word : words) {
      EXPECT_NE(status.message().find(word), std::string::npos) << "want '" << word << "' in:\n" << status.message();
    }
    EXPECT_EQ(cfg.source_file, "untouched") << "a failed parse must leave *out alone";
    EXPECT_TRUE(cfg.images.empty());
    return status.message();
  }

  TempDir dir_;
};

// ---------------------------------------------------------------------------
// Good files

TEST_F(ConfigTest, FullSchema) {
  const std::string base = Touch("templates/debian-12.raw");
  const std::string delta = Touch("templates/delta.raw");
  const std::string extra = Touch("extra.raw");
  MountConfig cfg = ParseOk(Yaml(R"(
mountpoint: mnt/corfs/
control_socket: /run/corfs.sock
allow_other: true
defaults:
  cluster_size: 128K
  copy_on_read: false
  create_dirs: true
  stream:
    speed: 100M
    workers: 3
templates:
  base: templates/debian-12.raw
  layered: [templates/delta.raw, base]
  fancy:
    - {path: extra.raw, format: raw}
    - {template: layered}
images:
  vm1:
    overlay: overlays/vm1.img
    backing: fancy
    size: 10G
    cluster_size: 64K
    copy_on_read: true
    read_only: false
    mode: "0600"
    uid: 1000
    gid: 100
    create: false
    create_dirs: false
    write_threshold: 80%
    stream:
      auto: true
      chunk_size: 1M
      base: ./templates/debian-12.raw
      on_error: stop
  blank:
    overlay: /abs/blank.img
    size: 1G
    write_threshold: 512M
)"));
  EXPECT_EQ(cfg.source_file, "vms.yaml");
  EXPECT_EQ(cfg.mountpoint, dir_.path() + "/mnt/corfs");
  EXPECT_EQ(cfg.control_socket, "/run/corfs.sock");
  EXPECT_TRUE(cfg.allow_other);
  ASSERT_EQ(cfg.images.size(), 2u);

  const ImageConfig& vm1 = cfg.images[0];
  EXPECT_EQ(vm1.name, "vm1");
  EXPECT_EQ(vm1.overlay_path, Path("overlays/vm1.img"));
  ASSERT_EQ(vm1.backing.size(), 3u);
  EXPECT_EQ(vm1.backing[0].path, extra);
  EXPECT_EQ(vm1.backing[0].format, "raw");
  EXPECT_EQ(vm1.backing[1].path, delta);
  EXPECT_EQ(vm1.backing[1].format, "");
  EXPECT_EQ(vm1.backing[2].path, base);
  EXPECT_EQ(vm1.size, 10 * kGiB);
  EXPECT_EQ(vm1.cluster_size, 64 * kKiB);
  EXPECT_TRUE(vm1.copy_on_read);
  EXPECT_FALSE(vm1.read_only);
  EXPECT_FALSE(vm1.create);
  EXPECT_FALSE(vm1.create_dirs);
  EXPECT_EQ(vm1.mode, 0600u);
  EXPECT_EQ(vm1.uid, 1000u);
  EXPECT_EQ(vm1.gid, 100u);
  EXPECT_EQ(vm1.write_threshold.kind, WriteThreshold::Kind::kPercent);
  EXPECT_EQ(vm1.write_threshold.percent_thousandths, 80000u);
  EXPECT_EQ(vm1.write_threshold.Bytes(10 * kGiB), 8 * kGiB);
  EXPECT_TRUE(vm1.stream.auto_start);
  EXPECT_EQ(vm1.stream.speed, 100 * kMiB);  // from defaults
  EXPECT_EQ(vm1.stream.workers, 3u);        // from defaults
  EXPECT_EQ(vm1.stream.chunk_size, kMiB);
  EXPECT_EQ(vm1.stream.base, base);  // normalised to the chain's path
  EXPECT_EQ(vm1.stream.on_error, jobs::OnError::kStop);

  const ImageConfig& blank = cfg.images[1];
  EXPECT_EQ(blank.overlay_path, "/abs/blank.img");
  EXPECT_TRUE(blank.backing.empty());
  EXPECT_EQ(blank.size, kGiB);
  EXPECT_EQ(blank.cluster_size, 128 * kKiB);  // from defaults
  EXPECT_FALSE(blank.copy_on_read);           // from defaults
  EXPECT_TRUE(blank.create_dirs);             // from defaults
  EXPECT_EQ(blank.stream.speed, 100 * kMiB);
  EXPECT_FALSE(blank.stream.auto_start);
  EXPECT_EQ(blank.write_threshold.kind, WriteThreshold::Kind::kBytes);
  EXPECT_EQ(blank.write_threshold.Bytes(kGiB), 512 * kMiB);
}

TEST_F(ConfigTest, BuiltInDefaults) {
  Touch("base.raw");
  MountConfig cfg = ParseOk(Yaml(R"(
images:
  vm1:
    overlay: vm1.img
    backing: [base.raw]
)"));
  EXPECT_FALSE(cfg.mountpoint.has_value());
  EXPECT_FALSE(cfg.control_socket.has_value());  // the mount puts it beside the mountpoint
  EXPECT_FALSE(cfg.allow_other);
  ASSERT_EQ(cfg.images.size(), 1u);
  const ImageConfig& image = cfg.images[0];
  EXPECT_EQ(image.size, 0u);  // the backing image's
  EXPECT_EQ(image.cluster_size, 64 * kKiB);
  EXPECT_TRUE(image.copy_on_read);
  EXPECT_FALSE(image.read_only);
  EXPECT_TRUE(image.create);
  EXPECT_FALSE(image.create_dirs);  // a missing folder is refused, not made
  EXPECT_FALSE(image.mode.has_value());
  EXPECT_EQ(DefaultMode(image, /*allow_other=*/false), 0644u);
  EXPECT_EQ(DefaultMode(image, /*allow_other=*/true), 0600u);  // no disk readable by every user
  EXPECT_EQ(image.uid, ::getuid());
  EXPECT_EQ(image.gid, ::getgid());
  EXPECT_EQ(image.write_threshold.kind, WriteThreshold::Kind::kNone);
  EXPECT_EQ(image.write_threshold.Bytes(kGiB), 0u);
  EXPECT_FALSE(image.stream.auto_start);
  EXPECT_EQ(image.stream.speed, 0u);
  EXPECT_EQ(image.stream.workers, 0u);
  EXPECT_EQ(image.stream.chunk_size, 512 * kKiB);
  EXPECT_FALSE(image.stream.base.has_value());
  EXPECT_EQ(image.stream.on_error, jobs::OnError::kReport);
}

TEST_F(ConfigTest, ChunkSizeFollowsLargeClusters) {
  MountConfig cfg = ParseOk(Yaml(R"(
images:
  big: {overlay: big.img, size: 1G, cluster_size: 2M}
)"));
  EXPECT_EQ(cfg.images[0].stream.chunk_size, 2 * kMiB);
}

TEST_F(ConfigTest, ScalarForms) {
  MountConfig cfg = ParseOk(Yaml(R"(
images:
  a: {overlay: a.img, size: 65536, mode: 0644, copy_on_read: yes, read_only: off, write_threshold: 12.5%}
  b: {overlay: b.img, size: "1.5G", mode: 644, copy_on_read: False, write_threshold: 0}
  c: {overlay: c.img, size: 4096, mode: 0o600, write_threshold: 0%, stream: {on_error: ignore, speed: 0}}
)"));
  ASSERT_EQ(cfg.images.size(), 3u);
  EXPECT_EQ(cfg.images[0].size, 65536u);
  EXPECT_EQ(cfg.images[0].mode, 0644u);
  EXPECT_EQ(DefaultMode(cfg.images[0], /*allow_other=*/true), 0644u);  // the YAML's mode wins
  EXPECT_TRUE(cfg.images[0].copy_on_read);
  EXPECT_FALSE(cfg.images[0].read_only);
  EXPECT_EQ(cfg.images[0].write_threshold.percent_thousandths, 12500u);
  EXPECT_EQ(cfg.images[0].write_threshold.Bytes(80000), 10000u);
  EXPECT_EQ(cfg.images[1].size, 1536 * kMiB);
  EXPECT_EQ(cfg.images[1].mode, 0644u);  // always octal, as in chmod
  EXPECT_FALSE(cfg.images[1].copy_on_read);
  EXPECT_EQ(cfg.images[1].write_threshold.kind, WriteThreshold::Kind::kNone);
  EXPECT_EQ(cfg.images[2].mode, 0600u);
  EXPECT_EQ(cfg.images[2].write_threshold.kind, WriteThreshold::Kind::kNone);
  EXPECT_EQ(cfg.images[2].stream.on_error, jobs::OnError::kIgnore);
}

TEST_F(ConfigTest, VerifyBackingPerImageAndInDefaults) {
  MountConfig cfg = ParseOk(Yaml(R"(
defaults:
  verify_backing: full
images:
  a: {overlay: a.img, size: 1G}
  b: {overlay: b.img, size: 1G, verify_backing: sampled}
  c: {overlay: c.img, size: 1G}
)"));
  ASSERT_EQ(cfg.images.size(), 3u);
  EXPECT_EQ(cfg.images[0].verify_backing, overlay::VerifyBacking::kFull);
  EXPECT_EQ(cfg.images[1].verify_backing, overlay::VerifyBacking::kSampled);
  EXPECT_EQ(cfg.images[2].verify_backing, overlay::VerifyBacking::kFull);
  EXPECT_EQ(ParseOk("images:\n  a: {overlay: a.img, size: 1G}\n").images[0].verify_backing,
            overlay::VerifyBacking::kSampled);
  ExpectError("images:\n  vm1: {overlay: a.img, size: 1G, verify_backing: fully}\n", 2, "fully",
              {"images.vm1.verify_backing: expected", "sampled", "full", "'fully'"});
  ExpectError("defaults:\n  verify_backing: [full]\n", 2, "[full]", {"defaults.verify_backing: expected a string"});
}

TEST_F(ConfigTest, BootProfilePerImageAndInDefaults) {
  MountConfig cfg = ParseOk(Yaml(R"(
defaults:
  boot_profile: profiles/base.profile
images:
  a: {overlay: a.img, size: 1G}
  b: {overlay: b.img, size: 1G, boot_profile: b.profile, boot_profile_idle: 30}
)"));
  ASSERT_EQ(cfg.images.size(), 2u);
  EXPECT_EQ(cfg.images[0].boot_profile, Path("profiles/base.profile")) << "relative to the YAML file's folder";
  EXPECT_EQ(cfg.images[0].boot_profile_idle, std::chrono::seconds(10));
  EXPECT_EQ(cfg.images[1].boot_profile, Path("b.profile"));
  EXPECT_EQ(cfg.images[1].boot_profile_idle, std::chrono::seconds(30));
  EXPECT_FALSE(ParseOk("images:\n  a: {overlay: a.img, size: 1G}\n").images[0].boot_profile.has_value());
  ExpectError("images:\n  vm1: {overlay: a.img, size: 1G, boot_profile_idle: 10ms}\n", 2, "10ms",
              {"images.vm1.boot_profile_idle"});
}

TEST_F(ConfigTest, WriteThresholdBytesDoesNotOverflow) {
  WriteThreshold t{WriteThreshold::Kind::kPercent, 0, 99999};
  const uint64_t huge = UINT64_MAX - 5;
  EXPECT_LT(t.Bytes(huge), huge);
  EXPECT_GT(t.Bytes(huge), huge / 100 * 99);
  t.percent_thousandths = WriteThreshold::kFullDisk;
  EXPECT_EQ(t.Bytes(huge), huge);
}

TEST_F(ConfigTest, BackingForms) {
  const std::string base = Touch("base.raw");
  const std::string delta = Touch("delta.raw");
  MountConfig cfg = ParseOk(Yaml(R"(
templates:
  base: base.raw
  alias: {template: base}
images:
  by-name: {overlay: o1.img, backing: base}
  by-alias: {overlay: o2.img, backing: alias}
  by-path: {overlay: o3.img, backing: delta.raw}
  by-map: {overlay: o4.img, backing: {path: delta.raw, format: auto}}
  mixed: {overlay: o5.img, backing: [delta.raw, base]}
  none: {overlay: o6.img, backing: [], size: 1M}
  tilde: {overlay: o7.img, backing: ~, size: 1M}
)"));
  ASSERT_EQ(cfg.images.size(), 7u);
  auto paths = [](const ImageConfig& image) {
    std::vector<std::string> out;
    for (const overlay::ImageSpec& spec : image.backing) out.push_back(spec.path + "|" + spec.format);
    return out;
  };
  EXPECT_EQ(paths(cfg.images[0]), std::vector<std::string>{base + "|"});
  EXPECT_EQ(paths(cfg.images[1]), std::vector<std::string>{base + "|"});
  EXPECT_EQ(paths(cfg.images[2]), std::vector<std::string>{delta + "|"});
  EXPECT_EQ(paths(cfg.images[3]), std::vector<std::string>{delta + "|"});  // auto = detect
  EXPECT_EQ(paths(cfg.images[4]), (std::vector<std::string>{delta + "|", base + "|"}));
  EXPECT_TRUE(cfg.images[5].backing.empty());
  EXPECT_TRUE(cfg.images[6].backing.empty());
}

TEST_F(ConfigTest, ImagesKeepFileOrderAndNamesAreFree) {
  MountConfig cfg = ParseOk(Yaml(R"(
images:
  zeta: {overlay: z.img, size: 1M}
  alpha.img: {overlay: a.img, size: 1M}
  "with space": {overlay: s.img, size: 1M}
  42: {overlay: n.img, size: 1M}
)"));
  ASSERT_EQ(cfg.images.size(), 4u);
  EXPECT_EQ(cfg.images[0].name, "zeta");
  EXPECT_EQ(cfg.images[1].name, "alpha.img");
  EXPECT_EQ(cfg.images[2].name, "with space");
  EXPECT_EQ(cfg.images[3].name, "42");
}

TEST_F(ConfigTest, PathsAreNormalised) {
  Touch("t/base.raw");
  MountConfig cfg = ParseOk(Yaml(R"(
mountpoint: /mnt//x/../corfs/
images:
  vm1: {overlay: a/./b/../vm1.img, backing: [t/../t/base.raw]}
)"));
  EXPECT_EQ(cfg.mountpoint, "/mnt/corfs");
  EXPECT_EQ(cfg.images[0].overlay_path, Path("a/vm1.img"));
  EXPECT_EQ(cfg.images[0].backing[0].path, Path("t/base.raw"));
}

TEST_F(ConfigTest, EmptyImagesIsAnEmptyMount) {
  MountConfig cfg = ParseOk("mountpoint: /mnt/x\nimages: {}\n");
  EXPECT_TRUE(cfg.images.empty());
  cfg = ParseOk("images:\n");
  EXPECT_TRUE(cfg.images.empty());
}

TEST_F(ConfigTest, LoadResolvesAgainstTheFilesFolder) {
  Touch("conf/templates/base.raw");
  {
    std::ofstream out(Path("conf/vms.yaml"));
    out << "mountpoint: ../mnt\nimages:\n  vm1:\n    overlay: overlays/vm1.img\n    backing: [templates/base.raw]\n";
  }
  MountConfig cfg;
  Status status = LoadMountConfig(Path("conf/vms.yaml"), &cfg);
  ASSERT_TRUE(status.ok()) << status.message();
  EXPECT_EQ(cfg.source_file, Path("conf/vms.yaml"));
  EXPECT_EQ(cfg.mountpoint, Path("mnt"));
  EXPECT_EQ(cfg.images[0].overlay_path, Path("conf/overlays/vm1.img"));
  EXPECT_EQ(cfg.images[0].backing[0].path, Path("conf/templates/base.raw"));
  EXPECT_FALSE(fs::exists(Path("conf/overlays"))) << "loading must create nothing";
}

TEST_F(ConfigTest, LoadMissingOrUnreadableFile) {
  MountConfig cfg;
  Status status = LoadMountConfig(Path("nope.yaml"), &cfg);
  EXPECT_FALSE(status.ok());
  EXPECT_EQ(status.code(), ENOENT);
  EXPECT_NE(status.message().find("nope.yaml"), std::string::npos) << status.message();
  status = LoadMountConfig(dir_.path(), &cfg);
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("folder"), std::string::npos) << status.message();
}

TEST_F(ConfigTest, LoadReportsTheFileNameAsGiven) {
  {
    std::ofstream out(Path("bad.yaml"));
    out << "images:\n  vm1:\n    sise: 1G\n";
  }
  MountConfig cfg;
  Status status = LoadMountConfig(Path("bad.yaml"), &cfg);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find(Path("bad.yaml") + ":3:5: "), std::string::npos) << status.message();
}

// ---------------------------------------------------------------------------
// Malformed YAML and structure

TEST_F(ConfigTest, MalformedYaml) {
  ExpectError("images:\n  vm1: [a, b\n  vm2: 3\n", 3, 6, {"malformed YAML"});
  ExpectError("images:\n  vm1:\n\toverlay: x\n", 3, 2, {"malformed YAML"});  // a tab
  ExpectError("images: {vm1: {overlay: a.img}\n", 2, 1, {"malformed YAML"});
}

// yaml-cpp 0.7's LoadAll loops forever on these, and Load reads them as null
// (jbeder/yaml-cpp#1040). A hang here fails by the ctest timeout.
TEST_F(ConfigTest, StrayCommaAtTheTopOfADocument) {
  ExpectError(",\nimages: {}\n", 1, 1, {"malformed YAML: unexpected ','"});
  ExpectError("- a\n,\n", 2, 1, {"malformed YAML: unexpected ','"});
  ExpectError("---\n,\n", 2, 1, {"malformed YAML: unexpected ','"});
  ExpectError("mountpoint: /mnt/x\n---\n,\n", 2, 1, {"second YAML document"});
}

TEST_F(ConfigTest, EmptyFile) {
  ExpectError("", 1, 1, {"empty"});
  ExpectError("# only a comment\n", 1, 1, {"empty"});
}

TEST_F(ConfigTest, TwoDocuments) {
  ExpectError("images: {}\n---\nimages: {}\n", 2, 1, {"second YAML document"});
  ExpectError("images: {}\n...\n---\n", 3, 1, {"second YAML document"});
}

TEST_F(ConfigTest, TopLevelNotAMap) {
  ExpectError("- a\n- b\n", 1, 1, {"expected a map", "a list"});
  ExpectError("just text\n", 1, 1, {"expected a map"});
}

TEST_F(ConfigTest, UnknownKeys) {
  ExpectError("imagse: {}\n", 1, 1, {"unknown key 'imagse'", "did you mean 'images'", "allowed keys:", "mountpoint"});
  ExpectError(Yaml(R"(
images:
  vm1:
    overlay: a.img
    size: 1G
    colour: blue
)"),
              5, "colour", {"images.vm1: unknown key 'colour'", "cluster_size"});
  ExpectError(Yaml(R"(
images:
  vm1:
    overlay: a.img
    size: 1G
    stream: {auto: true, sped: 1M}
)"),
              5, "sped", {"images.vm1.stream: unknown key 'sped'", "did you mean 'speed'", "on_error"});
  ExpectError(Yaml(R"(
defaults:
  stream:
    speeed: 1M
)"),
              3, 5, {"defaults.stream: unknown key 'speeed'"});
}

TEST_F(ConfigTest, UnknownKeyInChainEntry) {
  Touch("base.raw");
  ExpectError(Yaml(R"(
images:
  vm1:
    overlay: a.img
    backing:
      - {path: base.raw, formt: raw}
)"),
              5, "formt", {"unknown key 'formt'", "did you mean 'format'", "path, format, template"});
}

TEST_F(ConfigTest, OverlayAndBackingHaveNoDefault) {
  ExpectError("defaults:\n  overlay: x.img\n", 2, 3, {"defaults: `overlay` cannot have a default"});
  ExpectError("defaults:\n  backing: base\n", 2, 3, {"`backing` cannot have a default"});
}

TEST_F(ConfigTest, WrongTypes) {
  ExpectError("images:\n  - vm1\n", 2, 3, {"images: expected a map of image names", "a list"});
  ExpectError("images:\n  vm1: [overlay, a.img]\n", 2, "[overlay", {"images.vm1: expected a map", "a list"});
  ExpectError("images:\n  vm1: {overlay: a.img, size: 1G, stream: fast}\n", 2, "fast",
              {"images.vm1.stream: expected a map", "'fast'"});
  ExpectError("images:\n  vm1: {overlay: a.img, size: 1G, copy_on_read: yes please}\n", 2, "yes please",
              {"images.vm1.copy_on_read: expected true or false", "'yes please'"});
  ExpectError("images:\n  vm1: {overlay: a.img, size: {g: 10}}\n", 2, "{g",
              {"images.vm1.size: expected a size", "a map"});
  ExpectError("images:\n  vm1: {overlay: [a.img], size: 1G}\n", 2, "[a.img]",
              {"images.vm1.overlay: expected a string"});
  ExpectError("allow_other: maybe\n", 1, "maybe", {"allow_other: expected true or false"});
  ExpectError("mountpoint: [a, b]\n", 1, "[a", {"mountpoint: expected a string"});
  ExpectError("images:\n  vm1: {overlay: a.img, size: 1G, mode: rw-r--r--}\n", 2, "rw-",
              {"images.vm1.mode: expected an octal mode"});
  ExpectError("images:\n  vm1: {overlay: a.img, size: 1G, mode: 0999}\n", 2, "0999", {"octal mode"});
  ExpectError("images:\n  vm1: {overlay: a.img, size: 1G, mode: 04755}\n", 2, "04755", {"at most 0777"});
  ExpectError("images:\n  vm1: {overlay: a.img, size: 1G, uid: root}\n", 2, "root",
              {"images.vm1.uid: expected a whole number"});
  ExpectError("images:\n  vm1: {overlay: a.img, size: 1G, gid: -1}\n", 2, "-1",
              {"images.vm1.gid: expected a whole number"});
  ExpectError("images:\n  vm1: {overlay: a.img, size: 1G, uid: 4294967295}\n", 2, "4294967295", {"too large"});
  ExpectError("images:\n  vm1: {overlay: a.img, size: 1G, stream: {workers: 100000}}\n", 2, "100000",
              {"images.vm1.stream.workers", "too large"});
  ExpectError("images:\n  vm1: {overlay: a.img, size: 1G, create: }\n", 2, "create",
              {"images.vm1.create: expected true or false", "nothing"});
}

TEST_F(ConfigTest, EmptyValueIsReportedAtItsKey) {
  ExpectError("images:\n  vm1:\n    overlay: a.img\n    size:\n    mode: 0644\n", 4, 5,
              {"images.vm1.size: expected a size", "nothing"});
}

TEST_F(ConfigTest, NulInStrings) { ExpectError("images:\n  vm1: {overlay: \"a\\0b\", size: 1G}\n", 2, "\"a", {"NUL"}); }

TEST_F(ConfigTest, EachErrorStaysOnOneLine) {
  // A file name may hold a newline; the message escapes it.
  std::string message = ExpectError("images:\n  vm1: {overlay: a.img, backing: [\"bad\\nname.raw\"]}\n", 2, "\"bad",
                                    {"bad\\x0aname.raw"});
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
}

TEST_F(ConfigTest, TildeIsNotExpanded) { ExpectError("mountpoint: ~/mnt\n", 1, "~/mnt", {"'~' is not expanded"}); }

// ---------------------------------------------------------------------------
// Image names

TEST_F(ConfigTest, DuplicateImageNames) {
  std::string message = ExpectError(Yaml(R"(
images:
  vm1: {overlay: a.img, size: 1G}
  vm2: {overlay: b.img, size: 1G}
  vm1: {overlay: c.img, size: 1G}
)"),
                                    4, 3, {"duplicate key 'vm1'", "first at vms.yaml:2:3"});
  EXPECT_EQ(message.find('\n'), std::string::npos) << "one error, at the second vm1:\n" << message;
}

TEST_F(ConfigTest, DuplicateKeysAtEveryLevel) {
  ExpectError("allow_other: true\nallow_other: false\n", 2, 1, {"duplicate key 'allow_other'"});
  ExpectError("images:\n  vm1:\n    overlay: a.img\n    size: 1G\n    size: 2G\n", 5, 5,
              {"images.vm1: duplicate key 'size'"});
  ExpectError("templates:\n  t: x\n  t: y\n", 3, 3, {"templates: duplicate key 't'"});
}

TEST_F(ConfigTest, BadImageNames) {
  ExpectError("images:\n  a/b: {overlay: a.img, size: 1G}\n", 2, 3, {"must not contain '/'"});
  ExpectError("images:\n  .: {overlay: a.img, size: 1G}\n", 2, 3, {"'.' cannot be an image name"});
  ExpectError("images:\n  ..: {overlay: a.img, size: 1G}\n", 2, 3, {"'..' cannot be an image name"});
  ExpectError("images:\n  \"\": {overlay: a.img, size: 1G}\n", 2, 3, {"must not be empty"});
  ExpectError("images:\n  ~: {overlay: a.img, size: 1G}\n", 2, 3, {"must not be empty"});
  ExpectError("images:\n  \"a\\0b\": {overlay: a.img, size: 1G}\n", 2, 3, {"NUL"});
  ExpectError("images:\n  " + std::string(300, 'n') + ": {overlay: a.img, size: 1G}\n", 2, 3, {"longer than 255"});
  ExpectError("images:\n  [a, b]: {overlay: a.img, size: 1G}\n", 2, 3, {"a key must be a plain name"});
}

// ---------------------------------------------------------------------------
// Chains

TEST_F(ConfigTest, UnknownTemplate) {
  ExpectError("templates:\n  base: b.raw\nimages:\n  vm1: {overlay: a.img, backing: {template: nosuch}}\n", 4, "nosuch",
              {"unknown template 'nosuch'", "templates: base"});
  Touch("b.raw");
  ExpectError("templates:\n  base: b.raw\nimages:\n  vm1: {overlay: a.img, backing: bsae}\n", 4, "bsae",
              {"no template is called 'bsae'", "templates: base", Path("bsae")});
}

TEST_F(ConfigTest, TemplateCycles) {
  Touch("x.raw");
  std::string message = ExpectError(Yaml(R"(
templates:
  a: [x.raw, b]
  b: [c]
  c: a
images:
  vm1: {overlay: v.img, backing: a}
)"),
                                    4, 6, {"templates.c: template cycle: a -> b -> c -> a", "cannot contain itself"});
  EXPECT_EQ(message.find('\n'), std::string::npos) << "one cycle, one error:\n" << message;
  ExpectError("templates:\n  self: [self]\n", 2, "self]", {"template cycle: self -> self"});
}

TEST_F(ConfigTest, RepeatedImageInAChain) {
  Touch("base.raw");
  Touch("delta.raw");
  ExpectError("images:\n  vm1: {overlay: a.img, backing: [base.raw, ./base.raw]}\n", 2, "./base.raw",
              {"images.vm1.backing[1]", Path("base.raw") + " is already in this chain", "at vms.yaml:2:35"});
  // Through templates: layered holds base, then base again.
  ExpectError(Yaml(R"(
templates:
  base: base.raw
  layered: [delta.raw, base]
images:
  vm1: {overlay: a.img, backing: [layered, base]}
)"),
              5, "base]", {"images.vm1.backing[1]", "already in this chain"});
  // Inside a template: reported once, at the template.
  std::string message = ExpectError(Yaml(R"(
templates:
  twice: [base.raw, delta.raw, base.raw]
images:
  vm1: {overlay: a.img, backing: twice}
)"),
                                    2, 32, {"templates.twice[2]", "already in this chain"});
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
}

TEST_F(ConfigTest, RepeatedImageThroughLinks) {
  Touch("base.raw");
  fs::create_symlink(Path("base.raw"), Path("current.raw"));
  ASSERT_EQ(::link(Path("base.raw").c_str(), Path("hard.raw").c_str()), 0);
  ExpectError("images:\n  vm1: {overlay: a.img, backing: [current.raw, base.raw]}\n", 2, "base.raw]",
              {"the same file as " + Path("current.raw")});
  ExpectError("images:\n  vm1: {overlay: a.img, backing: [hard.raw, base.raw]}\n", 2, "base.raw]",
              {"already in this chain"});
}

TEST_F(ConfigTest, MissingBackingFiles) {
  Status status;
  ExpectError("images:\n  vm1: {overlay: a.img, backing: [templates/gone.raw]}\n", 2, "templates/gone",
              {"backing image " + Path("templates/gone.raw"), "No such file or directory"});
  ExpectError("templates:\n  base: {path: /nonexistent/base.raw, format: raw}\n", 2, "/nonexistent",
              {"templates.base.path: backing image /nonexistent/base.raw"});
  fs::create_directories(Path("folder"));
  ExpectError("images:\n  vm1: {overlay: a.img, backing: [folder]}\n", 2, "folder", {"is a folder"});
  MountConfig cfg;
  status = Parse("images:\n  vm1: {overlay: a.img, backing: [gone.raw]}\n", &cfg);
  EXPECT_EQ(status.code(), ENOENT);
}

TEST_F(ConfigTest, BadChainShapes) {
  Touch("base.raw");
  ExpectError("images:\n  vm1: {overlay: a.img, backing: [[base.raw]]}\n", 2, "[base.raw]", {"a list inside a chain"});
  ExpectError("images:\n  vm1: {overlay: a.img, backing: [{format: raw}]}\n", 2, "{format", {"needs `path:`"});
  ExpectError("images:\n  vm1: {overlay: a.img, backing: [{path: base.raw, template: t}]}\n", 2, "template",
              {"either `template:` or `path:`"});
  ExpectError("images:\n  vm1: {overlay: a.img, backing: [{path: base.raw, format: QCOW 2}]}\n", 2, "QCOW",
              {"not a format name"});
  ExpectError("images:\n  vm1: {overlay: a.img, backing: [{path: base.raw, format: vmdk}]}\n", 2, "vmdk",
              {"image format 'vmdk' is not supported"});
  ExpectError("templates:\n  empty: []\n", 2, "[]", {"template 'empty' names no image"});
  ExpectError("templates:\n  a/b: base.raw\n", 2, 3, {"must not contain '/'"});
}

TEST_F(ConfigTest, BrokenTemplatesAreReportedEvenIfUnused) {
  ExpectError("templates:\n  unused: [missing.raw]\nimages: {}\n", 2, "missing", {"missing.raw"});
}

// ---------------------------------------------------------------------------
// Values

TEST_F(ConfigTest, ClusterSize) {
  ExpectError("images:\n  vm1: {overlay: a.img, size: 1G, cluster_size: 3000}\n", 2, "3000", {"not a power of two"});
  ExpectError("images:\n  vm1: {overlay: a.img, size: 1G, cluster_size: 1K}\n", 2, "1K", {"outside 4 KiB .. 2 MiB"});
  ExpectError("defaults:\n  cluster_size: 4M\n", 2, "4M", {"defaults.cluster_size", "outside"});
}

TEST_F(ConfigTest, BadSizes) {
  ExpectError("images:\n  vm1: {overlay: a.img, size: 10Q}\n", 2, "10Q", {"images.vm1.size", "unknown unit"});
  ExpectError("images:\n  vm1: {overlay: a.img, size: -1}\n", 2, "-1", {"negative"});
  ExpectError("images:\n  vm1: {overlay: a.img, size: lots}\n", 2, "lots", {"not a number"});
  ExpectError("images:\n  vm1: {overlay: a.img, size: 0}\n", 2, "0}", {"size 0"});
  ExpectError("images:\n  vm1: {overlay: a.img, size: 8E}\n", 2, "8E", {"larger than a disk may be (1 EiB)"});
  ExpectError("images:\n  vm1: {overlay: a.img, size: 1G, stream: {speed: fast}}\n", 2, "fast",
              {"images.vm1.stream.speed"});
  ExpectError("images:\n  vm1: {overlay: a.img, size: 1G, stream: {chunk_size: 0}}\n", 2, "0}", {"more than 0"});
}

TEST_F(ConfigTest, StreamSpeedUnder64KIsATypo) {
  ExpectError("images:\n  vm1: {overlay: a.img, size: 1G, stream: {speed: 50}}\n", 2, "50}",
              {"images.vm1.stream.speed", "50 bytes/s", "below the minimum of 64 KiB/s", "--force"});
  ExpectError("defaults:\n  stream: {speed: 63K}\n", 2, "63K", {"defaults.stream.speed", "below the minimum"});
  MountConfig cfg;
  Status status = Parse(
      "images:\n  a: {overlay: a.img, size: 1G, stream: {speed: 64K}}\n"
      "  b: {overlay: b.img, size: 1G, stream: {speed: 0}}\n",
      &cfg);
  ASSERT_TRUE(status.ok()) << status.message();
  EXPECT_EQ(cfg.images[0].stream.speed, 64u * 1024);
  EXPECT_EQ(cfg.images[1].stream.speed, 0u) << "0 is unlimited";
}

TEST_F(ConfigTest, ChunkSmallerThanCluster) {
  ExpectError("images:\n  vm1: {overlay: a.img, size: 1G, cluster_size: 1M, stream: {chunk_size: 512K}}\n", 2, "512K",
              {"chunk_size", "smaller than the cluster size"});
}

TEST_F(ConfigTest, StreamBase) {
  Touch("base.raw");
  Touch("delta.raw");
  Touch("other.raw");
  ExpectError("images:\n  vm1: {overlay: a.img, backing: [delta.raw, base.raw], stream: {base: other.raw}}\n", 2,
              "other.raw",
              {"images.vm1.stream.base", Path("other.raw") + " is not in the chain of image 'vm1'", Path("delta.raw")});
  ExpectError("images:\n  vm1: {overlay: a.img, backing: [base.raw], stream: {base: gone.raw}}\n", 2, "gone.raw",
              {"images.vm1.stream.base", Path("gone.raw")});
  ExpectError("images:\n  vm1: {overlay: a.img, size: 1G, stream: {base: base.raw}}\n", 2, "base.raw",
              {"no backing chain"});
  // From defaults: reported at the default, for the image it does not fit.
  ExpectError(Yaml(R"(
defaults:
  stream: {base: base.raw}
images:
  ok: {overlay: a.img, backing: [delta.raw, base.raw]}
  bad: {overlay: b.img, backing: [delta.raw]}
)"),
              2, 18, {"images.bad.stream.base", "not in the chain of image 'bad'"});
}

TEST_F(ConfigTest, OnError) {
  ExpectError("images:\n  vm1: {overlay: a.img, size: 1G, stream: {on_error: explode}}\n", 2, "explode",
              {"images.vm1.stream.on_error: expected report, ignore or stop", "'explode'"});
}

TEST_F(ConfigTest, WriteThresholds) {
  ExpectError("images:\n  vm1: {overlay: a.img, size: 1G, write_threshold: 150%}\n", 2, "150", {"over 100%"});
  ExpectError("images:\n  vm1: {overlay: a.img, size: 1G, write_threshold: 100.001%}\n", 2, "100.001", {"over 100%"});
  ExpectError("images:\n  vm1: {overlay: a.img, size: 1G, write_threshold: 99999999999%}\n", 2, "999", {"over 100%"});
  ExpectError("images:\n  vm1: {overlay: a.img, size: 1G, write_threshold: 80.1234%}\n", 2, "80.1234",
              {"three decimals"});
  ExpectError("images:\n  vm1: {overlay: a.img, size: 1G, write_threshold: lots%}\n", 2, "lots", {"not a percentage"});
  ExpectError("images:\n  vm1: {overlay: a.img, size: 1G, write_threshold: -5%}\n", 2, "-5", {"not a percentage"});
  ExpectError("images:\n  vm1: {overlay: a.img, size: 1G, write_threshold: 2G}\n", 2, "2G", {"more than the disk"});
  ExpectError("images:\n  vm1: {overlay: a.img, size: 1G, write_threshold: [80%]}\n", 2, "[80",
              {"percentage of the disk"});
  MountConfig cfg = ParseOk("images:\n  vm1: {overlay: a.img, size: 1G, write_threshold: 100%}\n");
  EXPECT_EQ(cfg.images[0].write_threshold.Bytes(kGiB), kGiB);
}

TEST_F(ConfigTest, MissingOverlay) {
  ExpectError("images:\n  vm1:\n    size: 1G\n", 2, 3, {"images.vm1: missing `overlay:`"});
  ExpectError("images:\n  vm1:\n", 2, 3, {"missing `overlay:`"});
  ExpectError("images:\n  vm1: {overlay: dir/, size: 1G}\n", 2, "dir/", {"names a folder"});
}

TEST_F(ConfigTest, NoBackingNeedsSize) {
  ExpectError("images:\n  vm1: {overlay: a.img}\n", 2, 3, {"has no backing image, so it needs `size:`"});
  ExpectError("images:\n  vm1: {overlay: a.img, backing: []}\n", 2, 3, {"needs `size:`"});
}

TEST_F(ConfigTest, SharedOverlayPaths) {
  ExpectError(Yaml(R"(
images:
  vm1: {overlay: overlays/x.img, size: 1G}
  vm2: {overlay: ./overlays/../overlays/x.img, size: 1G}
)"),
              3, 18, {"images.vm2.overlay", "already used by the overlay of image 'vm1'", "vms.yaml:2:18"});
  // One image's data file is the other's metadata file.
  ExpectError(Yaml(R"(
images:
  vm1: {overlay: x, size: 1G}
  vm2: {overlay: x.cor, size: 1G}
)"),
              3, 18, {"already used by the overlay of image 'vm1'"});
  // Through a symbolic link to the folder.
  fs::create_directories(Path("real"));
  fs::create_directory_symlink(Path("real"), Path("link"));
  ExpectError(Yaml(R"(
images:
  vm1: {overlay: real/x.img, size: 1G}
  vm2: {overlay: link/x.img, size: 1G}
)"),
              3, 18, {"already used"});
}

TEST_F(ConfigTest, OverlayInAChain) {
  Touch("vm1.img");
  ExpectError("images:\n  vm1: {overlay: vm1.img, backing: [vm1.img]}\n", 2, "vm1.img",
              {"an overlay cannot back itself"});
  ExpectError(Yaml(R"(
images:
  vm1: {overlay: vm1.img, size: 1G}
  vm2: {overlay: vm2.img, backing: [vm1.img]}
)"),
              3, 36, {"images.vm2.backing", "the overlay of image 'vm1'"});
}

TEST_F(ConfigTest, PathsInsideTheMountpoint) {
  ExpectError("mountpoint: /mnt/x\ncontrol_socket: /mnt/x/ctl.sock\n", 2, "/mnt/x", {"inside the mountpoint /mnt/x"});
  ExpectError("mountpoint: /mnt/x\ncontrol_socket: /mnt/x\n", 2, "/mnt/x", {"inside the mountpoint"});
  ExpectError("mountpoint: mnt\nimages:\n  vm1: {overlay: mnt/vm1.img, size: 1G}\n", 3, "mnt/",
              {"inside the mountpoint"});
  ExpectError("mountpoint: /\n", 1, "/", {"cannot mount on /"});
  ParseOk("mountpoint: /mnt/x\ncontrol_socket: /mnt/x.sock\n");
}

TEST_F(ConfigTest, EveryErrorIsReportedInFileOrder) {
  Touch("base.raw");
  MountConfig cfg;
  Status status = Parse(Yaml(R"(
images:
  vm2:
    overlay: b.img
    backing: [base.raw, gone.raw]
    mode: 999
  vm1:
    cluster_size: 3K
templates:
  t: [t]
)"),
                        &cfg);
  ASSERT_FALSE(status.ok());
  const std::string& m = status.message();
  size_t gone = m.find("vms.yaml:4:25:");
  size_t mode = m.find("vms.yaml:5:11:");
  size_t missing = m.find("vms.yaml:6:3: images.vm1: missing `overlay:`");
  size_t cluster = m.find("vms.yaml:7:19:");
  size_t cycle = m.find("vms.yaml:9:7:");
  EXPECT_NE(gone, std::string::npos) << m;
  EXPECT_NE(mode, std::string::npos) << m;
  EXPECT_NE(missing, std::string::npos) << m;
  EXPECT_NE(cluster, std::string::npos) << m;
  EXPECT_NE(cycle, std::string::npos) << m;
  EXPECT_TRUE(gone < mode && mode < missing && missing < cluster && cluster < cycle) << m;
  EXPECT_EQ(status.code(), ENOENT) << "the first error's code";
}

TEST_F(ConfigTest, DocumentIsNotChangedByDefaults) {
  // Defaults and images set the same keys, which must not alias each other.
  Touch("base.raw");
  Touch("delta.raw");
  MountConfig cfg = ParseOk(Yaml(R"(
defaults:
  stream: {base: base.raw, speed: 1M}
images:
  a: {overlay: a.img, backing: [delta.raw, base.raw], stream: {base: delta.raw}}
  b: {overlay: b.img, backing: [delta.raw, base.raw]}
)"));
  EXPECT_EQ(cfg.images[0].stream.base, Path("delta.raw"));
  EXPECT_EQ(cfg.images[1].stream.base, Path("base.raw"));
}

}  // namespace
}  // namespace corfs::config
