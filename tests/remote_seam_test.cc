// The protocol/format seam with a fake server: images "on a server" are
// byte buffers a fake protocol driver presents under a URI, so the qcow2
// driver, chain expansion, the overlay's identity checks and the
// credential rules are tested without the NBD and HTTP drivers.

#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>

#include "config/config_loader.h"
#include "overlay/image_location.h"
#include "overlay/image_opener.h"
#include "overlay/overlay.h"
#include "overlay/qcow2_driver.h"
#include "overlay/qcow2_header.h"
#include "tests/test_support.h"

namespace corfs::overlay {
namespace {

using testing::ReadFileBytes;
using testing::RunCommand;
using testing::TempDir;

constexpr uint64_t kKiB = 1024;
constexpr uint64_t kMiB = kKiB * kKiB;

void QemuImg(std::vector<std::string> args) {
  args.insert(args.begin(), "/usr/bin/qemu-img");
  testing::CommandResult r = RunCommand(args);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
}

// The bytes of one resource of the fake server, and what its server says
// identifies their version.
struct Resource {
  std::shared_ptr<const std::string> bytes;
  std::string version_tag;
};

// A protocol driver over a resource: what an HTTP or NBD driver presents.
// Counts its reads.
class MemoryProtocol final : public BlockDriver {
 public:
  MemoryProtocol(std::string name, Resource resource, std::atomic<int>* reads)
      : name_(std::move(name)), resource_(std::move(resource)), reads_(reads) {}

  uint64_t size() const override { return resource_.bytes->size(); }
  const std::string& path() const override { return name_; }
  std::string format() const override { return "raw"; }
  Status Read(uint64_t offset, std::span<char> buf) override {
    reads_->fetch_add(1);
    const std::string& bytes = *resource_.bytes;
    for (size_t i = 0; i < buf.size(); ++i) buf[i] = offset + i < bytes.size() ? bytes[offset + i] : '\0';
    return Status::Ok();
  }
  Status Write(uint64_t, std::span<const char>) override { return Status::Error(EROFS, name_); }
  Status Flush() override { return Status::Ok(); }
  Status Discard(uint64_t, uint64_t) override { return Status::Error(EROFS, name_); }
  Status GetBlockStatus(uint64_t, uint64_t length, BlockStatus* out) override {
    *out = {Allocation::kData, length};
    return Status::Ok();
  }
  std::string version_tag() const override { return resource_.version_tag; }

 private:
  std::string name_;
  Resource resource_;
  std::atomic<int>* reads_;
};

// URIs -> resources. Every name it is asked for must be redacted already.
class FakeServer {
 public:
  void Put(const std::string& uri, std::string bytes, std::string tag = "") {
    std::lock_guard lock(mutex_);
    resources_[uri] = {std::make_shared<const std::string>(std::move(bytes)), std::move(tag)};
  }
  ProtocolOpener protocol() {
    return [this](const std::string& name, std::unique_ptr<BlockDriver>* out) {
      std::lock_guard lock(mutex_);
      asked_.push_back(name);
      auto it = resources_.find(name);
      if (it == resources_.end()) return Status::NotFound(name + ": 404 Not Found");
      *out = std::make_unique<MemoryProtocol>(name, it->second, &reads_);
      return Status::Ok();
    };
  }
  ImageOpener opener() { return ImageOpenerOver(protocol()); }
  int reads() const { return reads_.load(); }
  void ResetReads() { reads_ = 0; }
  std::vector<std::string> asked() {
    std::lock_guard lock(mutex_);
    return asked_;
  }

 private:
  std::mutex mutex_;
  std::map<std::string, Resource> resources_;
  std::vector<std::string> asked_;
  std::atomic<int> reads_{0};
};

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

std::string RandomImage(size_t size) {
  std::mt19937_64 rng(testing::TestSeed());
  return testing::RandomBytes(rng, size);
}

// ---------------------------------------------------------------------------
// qcow2 over a protocol driver

TEST(Qcow2OverProtocol, CompressedImageReadsAsItsLocalCopy) {
  TempDir dir;
  const std::string raw = dir.File("t.raw"), qcow2 = dir.File("t.qcow2");
  // Compressible but not constant: text with random numbers in it.
  std::string content;
  std::mt19937_64 rng(testing::TestSeed());
  while (content.size() < 4 * kMiB) content += "cloud image block " + std::to_string(rng() % 1000) + "\n";
  content.resize(4 * kMiB);
  WriteFile(raw, content);
  QemuImg({"convert", "-c", "-f", "raw", "-O", "qcow2", raw, qcow2});

  FakeServer server;
  server.Put("https://templates.example/t/t.qcow2", ReadFileBytes(qcow2), "etag:\"abc\"");
  std::unique_ptr<BlockDriver> remote;
  ASSERT_TRUE(server.opener()("https://templates.example/t/t.qcow2", "", &remote).ok());
  EXPECT_EQ(remote->format(), "qcow2");
  EXPECT_EQ(remote->size(), content.size());
  EXPECT_EQ(remote->version_tag(), "etag:\"abc\"");  // the file's tag is the image's
  std::string read(content.size(), '\0');
  ASSERT_TRUE(remote->Read(0, read).ok());
  EXPECT_TRUE(read == content) << testing::FirstDifference(read, content);

  // Whole compressed clusters back to back in the file are one read of the
  // protocol driver (one request to the server), once the L2 table is in.
  const uint64_t cluster = 64 * kKiB;
  std::string part(16 * cluster, '\0');
  ASSERT_TRUE(remote->Read(16 * cluster, std::span<char>(part.data(), cluster)).ok());
  server.ResetReads();
  ASSERT_TRUE(remote->Read(17 * cluster, std::span<char>(part.data(), 15 * cluster)).ok());
  EXPECT_EQ(server.reads(), 1);
  EXPECT_EQ(part.substr(0, 15 * cluster), content.substr(17 * cluster, 15 * cluster));
}

TEST(Qcow2OverProtocol, BackingNamesResolveOnTheServer) {
  auto resolve = [](const std::string& image, const std::string& stored) {
    std::string out;
    Status status = ResolveQcow2BackingPath(image, stored, &out);
    return status.ok() ? out : "error: " + status.message();
  };
  EXPECT_EQ(resolve("https://h/t/top.qcow2", "base.qcow2"), "https://h/t/base.qcow2");
  EXPECT_EQ(resolve("https://h/t/top.qcow2?sig=1", "../b/base.raw"), "https://h/b/base.raw");
  EXPECT_EQ(resolve("https://h:8443/top.qcow2", "base.raw"), "https://h:8443/base.raw");
  EXPECT_EQ(resolve("nbd+unix:///top?socket=/run/s.sock", "base"), "nbd+unix:///base?socket=/run/s.sock");
  EXPECT_EQ(resolve("nbd://h:10809/top", "base"), "nbd://h:10809/base");
  // A URI is followed as written, without credentials; a path of this host is not.
  EXPECT_EQ(resolve("https://h/t/top.qcow2", "nbd://u:secret@h2/base"), "nbd://h2/base");
  EXPECT_EQ(resolve("/local/top.qcow2", "https://h/base.raw"), "https://h/base.raw");
  EXPECT_NE(resolve("https://h/t/top.qcow2", "/etc/shadow").find("absolute path"), std::string::npos);
  EXPECT_NE(resolve("https://h/t/top.qcow2", "file:/etc/shadow").find("absolute path"), std::string::npos);
  EXPECT_EQ(resolve("https://h/top.qcow2", "../../x"), "https://h/x");  // RFC 3986: ".." stops at the root
  EXPECT_NE(resolve("https://h/top.qcow2", "ftp://h/x").find("not supported"), std::string::npos);
}

TEST(Qcow2OverProtocol, ChainsOnAServerExpandLikeLocalOnes) {
  TempDir dir;
  const std::string base = dir.File("base.raw"), top = dir.File("top.qcow2");
  const std::string content = RandomImage(2 * kMiB);
  WriteFile(base, content);
  QemuImg({"create", "-f", "qcow2", "-b", "base.raw", "-F", "raw", top});
  FakeServer server;
  server.Put("https://h/t/top.qcow2", ReadFileBytes(top));
  server.Put("https://h/t/base.raw", content);

  std::vector<ImageSpec> chain;
  ASSERT_TRUE(ExpandImageChain("https://h/t/top.qcow2", "", server.protocol(), &chain).ok());
  ASSERT_EQ(chain.size(), 2u);
  EXPECT_EQ(chain[1].path, "https://h/t/base.raw");
  EXPECT_EQ(chain[1].format, "raw");
  ASSERT_TRUE(ExpandImageList({{"https://h/t/top.qcow2", ""}}, server.protocol(), &chain).ok());
  ASSERT_EQ(chain.size(), 2u);
  // Listing the backing file again is the user following the chain as written.
  ASSERT_TRUE(ExpandImageList({{"https://h/t/top.qcow2", ""}, {"https://h/t/base.raw", "raw"}}, server.protocol(),
                              &chain)
                  .ok());
  EXPECT_EQ(chain.size(), 2u);

  // A loop on the server, found by the names.
  const std::string a = dir.File("a.qcow2"), b = dir.File("b.qcow2");
  QemuImg({"create", "-f", "qcow2", "-u", "-b", "b.qcow2", "-F", "qcow2", a, "1M"});
  QemuImg({"create", "-f", "qcow2", "-u", "-b", "a.qcow2", "-F", "qcow2", b, "1M"});
  server.Put("https://h/t/a.qcow2", ReadFileBytes(a));
  server.Put("https://h/t/b.qcow2", ReadFileBytes(b));
  Status loop = ExpandImageChain("https://h/t/a.qcow2", "", server.protocol(), &chain);
  EXPECT_EQ(loop.code(), EINVAL);
  EXPECT_NE(loop.message().find("loops: https://h/t/a.qcow2 -> https://h/t/b.qcow2 -> https://h/t/a.qcow2"),
            std::string::npos)
      << loop.message();

  // An absolute path named by an image on a server is refused.
  const std::string evil = dir.File("evil.qcow2");
  QemuImg({"create", "-f", "qcow2", "-u", "-b", base, "-F", "raw", evil, "2M"});
  server.Put("https://h/t/evil.qcow2", ReadFileBytes(evil));
  Status refused = ExpandImageChain("https://h/t/evil.qcow2", "", server.protocol(), &chain);
  EXPECT_FALSE(refused.ok());
  EXPECT_NE(refused.message().find("absolute path"), std::string::npos) << refused.message();
}

// ---------------------------------------------------------------------------
// Identity of remote images

class RemoteOverlayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    QemuImg({"create", "-f", "qcow2", "-u", "-b", "base.raw", "-F", "raw", dir_.File("top.qcow2"), "2M"});
    content_ = RandomImage(2 * kMiB);
    server_.Put(kTop, ReadFileBytes(dir_.File("top.qcow2")), "etag:\"v1\"");
    server_.Put(kBase, content_, "last-modified:Tue, 01 Dec 2026 10:00:00 GMT");
  }

  Status Create() {
    CreateOptions options;
    options.backing = {{kTop, ""}};
    options.opener = server_.opener();
    options.protocol = server_.protocol();
    return Overlay::Create(overlay(), options);
  }
  Status Open(std::unique_ptr<Overlay>* out, std::vector<std::string>* warnings = nullptr) {
    OpenOptions options;
    options.opener = server_.opener();
    options.protocol = server_.protocol();
    options.commit_interval = std::chrono::milliseconds(0);
    options.warn = [warnings](const std::string& w) {
      if (warnings != nullptr) warnings->push_back(w);
    };
    return Overlay::Open(overlay(), options, out);
  }
  std::string overlay() const { return dir_.File("disk.img"); }

  static constexpr const char* kTop = "https://h/t/top.qcow2";
  static constexpr const char* kBase = "https://h/t/base.raw";
  TempDir dir_;
  FakeServer server_;
  std::string content_;
};

TEST_F(RemoteOverlayTest, HeaderRecordsVersionTagsAndNoStamp) {
  ASSERT_TRUE(Create().ok());
  std::unique_ptr<Overlay> image;
  ASSERT_TRUE(Open(&image).ok());
  const OverlayHeader& header = image->header();
  EXPECT_EQ(header.version, 4u);
  ASSERT_EQ(header.chain.size(), 2u);
  EXPECT_EQ(header.chain[0].spec.path, kTop);
  EXPECT_EQ(header.chain[0].identity.version_tag, "etag:\"v1\"");
  EXPECT_FALSE(header.chain[0].identity.stamp.has_value());
  EXPECT_EQ(header.chain[1].spec.path, kBase);
  EXPECT_EQ(header.chain[1].identity.version_tag, "last-modified:Tue, 01 Dec 2026 10:00:00 GMT");
  std::string disk;
  ASSERT_TRUE(testing::ReadWholeDisk(*image, &disk).ok());
  EXPECT_TRUE(disk == content_);
}

TEST_F(RemoteOverlayTest, ChangedVersionTagIsRefusedNamingBoth) {
  ASSERT_TRUE(Create().ok());
  // Same bytes, new ETag: the server says it is another version.
  server_.Put(kTop, ReadFileBytes(dir_.File("top.qcow2")), "etag:\"v2\"");
  std::unique_ptr<Overlay> image;
  Status refused = Open(&image);
  EXPECT_EQ(refused.code(), EINVAL);
  EXPECT_NE(refused.message().find("etag:\"v2\""), std::string::npos) << refused.message();
  EXPECT_NE(refused.message().find("etag:\"v1\""), std::string::npos) << refused.message();
  EXPECT_NE(refused.message().find(kTop), std::string::npos) << refused.message();

  // A server that stopped sending tags: a warning, size and samples decide.
  server_.Put(kTop, ReadFileBytes(dir_.File("top.qcow2")), "");
  std::vector<std::string> warnings;
  ASSERT_TRUE(Open(&image, &warnings).ok());
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("version tag"), std::string::npos) << warnings[0];
}

TEST_F(RemoteOverlayTest, WithoutTagsSizeAndFingerprintDecide) {
  // An NBD export gives no tag.
  server_.Put(kTop, ReadFileBytes(dir_.File("top.qcow2")), "");
  server_.Put(kBase, content_, "");
  ASSERT_TRUE(Create().ok());
  std::string changed = content_;
  changed[0] ^= 1;  // inside the sampled first 64 KiB
  server_.Put(kBase, changed, "");
  std::unique_ptr<Overlay> image;
  Status refused = Open(&image);
  EXPECT_EQ(refused.code(), EINVAL);
  EXPECT_NE(refused.message().find("fingerprint"), std::string::npos) << refused.message();
  server_.Put(kBase, content_ + std::string(4096, 'x'), "");
  refused = Open(&image);
  EXPECT_NE(refused.message().find("size " + std::to_string(content_.size() + 4096)), std::string::npos)
      << refused.message();
}

// ---------------------------------------------------------------------------
// Credentials never become part of a name

TEST(RemoteCredentials, YamlUriCredentialsAreSplitOff) {
  TempDir dir;
  const std::string yaml = R"(
remote:
  connect_timeout: 2
  request_timeout: 500ms
  retries: 0
  connections: 2
images:
  vm: {overlay: vm.img, backing: "https://user:s%40cret@127.0.0.1:1/t/x.raw"}
  vm2: {overlay: vm2.img, backing: {path: "nbd://127.0.0.1:1/exp", format: raw}}
)";
  config::MountConfig cfg;
  Status loaded = config::ParseMountConfig(yaml, "test.yaml", dir.path(), &cfg);
  ASSERT_TRUE(loaded.ok()) << loaded.message();
  ASSERT_EQ(cfg.images.size(), 2u);
  EXPECT_EQ(cfg.images[0].backing[0].path, "https://127.0.0.1:1/t/x.raw");
  EXPECT_EQ(cfg.images[1].backing[0].path, "nbd://127.0.0.1:1/exp");
  EXPECT_EQ(cfg.remote.connect_timeout, std::chrono::seconds(2));
  EXPECT_EQ(cfg.remote.request_timeout, std::chrono::milliseconds(500));
  EXPECT_EQ(cfg.remote.retries, 0u);
  EXPECT_EQ(cfg.remote.connections, 2u);
  ASSERT_EQ(cfg.remote.uri_credentials.count("https://127.0.0.1:1/t/x.raw"), 1u);
  EXPECT_EQ(cfg.remote.uri_credentials.at("https://127.0.0.1:1/t/x.raw").user, "user");
  EXPECT_EQ(cfg.remote.uri_credentials.at("https://127.0.0.1:1/t/x.raw").password, "s@cret");
}

TEST(RemoteCredentials, UnreachableServerErrorHoldsNoSecret) {
  TempDir dir;
  config::MountConfig cfg;
  const std::string yaml =
      "remote: {connect_timeout: 1, retries: 0}\n"
      "images:\n  vm: {overlay: vm.img, backing: \"http://user:secret@127.0.0.1:1/x\"}\n";
  ASSERT_TRUE(config::ParseMountConfig(yaml, "test.yaml", dir.path(), &cfg).ok());
  CreateOptions options;
  options.backing = cfg.images[0].backing;
  options.opener = RemoteImageOpener(cfg.remote);
  options.protocol = RemoteProtocolOpener(cfg.remote);
  Status failed = Overlay::Create(dir.File("vm.img"), options);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.message().find("secret"), std::string::npos) << failed.message();
  EXPECT_NE(failed.message().find("http://127.0.0.1:1/x"), std::string::npos) << failed.message();
  EXPECT_FALSE(testing::FileExists(dir.File("vm.img.cor")));
}

TEST(RemoteCredentials, HeaderBytesHoldNoSecret) {
  TempDir dir;
  FakeServer server;
  server.Put("https://h/x.raw", RandomImage(kMiB), "etag:\"1\"");
  config::MountConfig cfg;
  const std::string yaml = "images:\n  vm: {overlay: vm.img, backing: \"https://user:secret@h/x.raw\"}\n";
  ASSERT_TRUE(config::ParseMountConfig(yaml, "test.yaml", dir.path(), &cfg).ok());
  CreateOptions options;
  options.backing = cfg.images[0].backing;
  options.opener = server.opener();
  options.protocol = server.protocol();
  ASSERT_TRUE(Overlay::Create(dir.File("vm.img"), options).ok());
  const std::string cor = ReadFileBytes(dir.File("vm.img.cor"));
  EXPECT_EQ(cor.find("secret"), std::string::npos);
  EXPECT_EQ(cor.find("user"), std::string::npos);
  EXPECT_NE(cor.find("https://h/x.raw"), std::string::npos);
  for (const std::string& asked : server.asked()) EXPECT_EQ(asked.find("secret"), std::string::npos) << asked;
}

}  // namespace
}  // namespace corfs::overlay
