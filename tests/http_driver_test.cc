// The HTTP protocol driver against a real server on 127.0.0.1: the test's
// own range server (tests/http_test_server.py), which can be told to
// misbehave. An honest server is read exactly, from many threads; a lying
// one (200 for a range, a short body, another range or size, a changed
// ETag) is refused with EIO naming the URL and what the server did, and
// nothing of its answer lands in the caller's buffer; transient failures
// (503, 429 with Retry-After, reset connections, a stalled server) are
// retried, and once the tries run out a later read works again.

#include "overlay/remote/http_driver.h"

#include <gtest/gtest.h>

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "tests/test_support.h"

extern char** environ;

namespace corfs::overlay {
namespace {

using corfs::testing::TempDir;
using std::chrono::milliseconds;

constexpr uint64_t kImageSize = 1024 * 1024 + 4321;  // not a multiple of anything

// The test server, stopped (by pid) when the object goes.
class TestServer {
 public:
  // With `tls`, HTTPS with dir/cert.pem and dir/key.pem.
  explicit TestServer(const std::string& dir, bool tls = false) : dir_(dir), tls_(tls) {
    std::remove((dir + "/port").c_str());  // a server started before in this folder wrote one
    std::vector<std::string> args = {"python3",     CORFS_HTTP_TEST_SERVER, dir + "/image.raw",
                                     dir + "/port", dir + "/mode",          dir + "/requests.log"};
    if (tls) {
      args.push_back(dir + "/cert.pem");
      args.push_back(dir + "/key.pem");
    }
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    if (posix_spawnp(&pid_, "python3", nullptr, nullptr, argv.data(), environ) != 0) pid_ = -1;
    for (int i = 0; i < 200 && pid_ > 0 && port_.empty(); ++i) {
      std::ifstream in(dir + "/port");
      if (!(in >> port_)) std::this_thread::sleep_for(milliseconds(25));
    }
  }
  ~TestServer() { Stop(); }
  TestServer(const TestServer&) = delete;
  TestServer& operator=(const TestServer&) = delete;

  void Stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  bool running() const { return pid_ > 0 && !port_.empty(); }
  std::string url(const std::string& userinfo = "") const {
    return (tls_ ? "https://" : "http://") + userinfo + "127.0.0.1:" + port_ + "/image.raw";
  }
  void SetMode(const std::string& mode) const { std::ofstream(dir_ + "/mode") << mode << "\n"; }
  std::string Requests() const { return corfs::testing::ReadFileBytes(dir_ + "/requests.log"); }
  void ClearRequests() const { std::ofstream cleared(dir_ + "/requests.log", std::ios::trunc); }

 private:
  std::string dir_;
  bool tls_ = false;
  pid_t pid_ = -1;
  std::string port_;
};

class HttpDriverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::mt19937_64 rng(corfs::testing::TestSeed());
    content_ = corfs::testing::RandomBytes(rng, kImageSize);
    std::ofstream(dir_.path() + "/image.raw", std::ios::binary) << content_;
    server_ = std::make_unique<TestServer>(dir_.path());
    ASSERT_TRUE(server_->running()) << "the test server did not start";
    options_.retries = 3;
    options_.backoff = milliseconds(10);
    options_.max_backoff = milliseconds(50);
    options_.request_timeout = milliseconds(2000);
    options_.connect_timeout = milliseconds(2000);
  }

  std::unique_ptr<BlockDriver> Open() {
    std::unique_ptr<BlockDriver> driver;
    Status opened = OpenHttpImage(server_->url(), options_, &driver);
    EXPECT_TRUE(opened.ok()) << opened.message();
    return driver;
  }

  // Reads [offset, offset+length) into a buffer that starts out as 0xAA.
  Status ReadInto(BlockDriver& driver, uint64_t offset, size_t length, std::string* out) {
    out->assign(length, '\xAA');
    return driver.Read(offset, *out);
  }

  TempDir dir_;
  std::string content_;
  std::unique_ptr<TestServer> server_;
  RemoteOptions options_;
};

TEST_F(HttpDriverTest, OpensAndReadsExactlyWhatTheServerHolds) {
  auto driver = Open();
  ASSERT_TRUE(driver);
  EXPECT_EQ(driver->size(), kImageSize);
  EXPECT_EQ(driver->format(), "raw");
  EXPECT_EQ(driver->path(), server_->url());
  EXPECT_EQ(driver->version_tag(), "etag:\"corfs-test-v1\"");
  std::string got;
  ASSERT_TRUE(ReadInto(*driver, 0, kImageSize, &got).ok());
  EXPECT_EQ(corfs::testing::FirstDifference(got, content_), "");
  ASSERT_TRUE(ReadInto(*driver, 12345, 1, &got).ok());
  EXPECT_EQ(got, content_.substr(12345, 1));
  // Past the end: zeros, without asking the server for them.
  ASSERT_TRUE(ReadInto(*driver, kImageSize - 100, 300, &got).ok());
  EXPECT_EQ(got, content_.substr(kImageSize - 100) + std::string(200, '\0'));
  ASSERT_TRUE(ReadInto(*driver, kImageSize + 4096, 512, &got).ok());
  EXPECT_EQ(got, std::string(512, '\0'));

  BlockStatus status;
  ASSERT_TRUE(driver->GetBlockStatus(4096, 65536, &status).ok());
  EXPECT_EQ(status.allocation, Allocation::kData);
  EXPECT_EQ(status.length, 65536U);
  EXPECT_EQ(driver->Write(0, std::string("x")).code(), EROFS);
  EXPECT_EQ(driver->Discard(0, 4096).code(), EROFS);
  EXPECT_TRUE(driver->CheckUnchanged().ok());
}

TEST_F(HttpDriverTest, ManyThreadsReadAtOnce) {
  options_.connections = 3;
  auto driver = Open();
  ASSERT_TRUE(driver);
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(t);
      for (int i = 0; i < 40; ++i) {
        const uint64_t offset = corfs::testing::RandomIn(rng, 0, kImageSize - 1);
        const size_t length = corfs::testing::RandomIn(rng, 1, 70000);
        std::string got(length, '\0');
        if (!driver->Read(offset, got).ok()) {
          ++wrong;
          continue;
        }
        std::string want = content_.substr(offset, length);
        want.resize(length, '\0');
        if (got != want) ++wrong;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(wrong.load(), 0);
}

struct Lie {
  const char* mode;
  const char* says;  // part of the message
  bool buffer_untouched;
};

TEST_F(HttpDriverTest, ALyingServerIsRefusedAndNothingOfItsAnswerIsUsed) {
  auto driver = Open();
  ASSERT_TRUE(driver);
  const Lie lies[] = {
      {"ignore-range", "answered HTTP 200 (the whole file) to a range request: it ignores Range", true},
      {"short", "a short body", false},
      {"wrong-range", "answered with bytes 70144-135679/1052897 to a request for 69632-135167/1052897", true},
      {"wrong-size", "the server says the file has 1056993 bytes, not the 1052897", true},
      {"change-etag", "now says etag:\"corfs-test-v2\", not etag:\"corfs-test-v1\"", true},
      {"modified", "answered HTTP 412 (If-Match failed): the image changed on the server", true},
  };
  for (const Lie& lie : lies) {
    SCOPED_TRACE(lie.mode);
    server_->SetMode(lie.mode);
    std::string got;
    Status read = ReadInto(*driver, 69632, 65536, &got);
    ASSERT_FALSE(read.ok());
    EXPECT_EQ(read.code(), EIO);
    EXPECT_NE(read.message().find(server_->url()), std::string::npos) << read.message();
    EXPECT_NE(read.message().find(lie.says), std::string::npos) << read.message();
    if (lie.buffer_untouched) {
      EXPECT_EQ(got, std::string(65536, '\xAA'));
    }
  }
  // Refusals are not retried: one request each.
  server_->ClearRequests();
  server_->SetMode("ignore-range");
  std::string got;
  EXPECT_FALSE(ReadInto(*driver, 0, 4096, &got).ok());
  EXPECT_EQ(server_->Requests(), "GET bytes=0-4095 ignore-range\n");

  server_->SetMode("ok");
  ASSERT_TRUE(ReadInto(*driver, 69632, 65536, &got).ok());
  EXPECT_EQ(got, content_.substr(69632, 65536));
}

TEST_F(HttpDriverTest, ASizeThatChangedIsRefused) {
  auto driver = Open();
  ASSERT_TRUE(driver);
  server_->SetMode("wrong-size");
  std::string got;
  Status read = ReadInto(*driver, 0, 4096, &got);
  EXPECT_NE(read.message().find("has 1056993 bytes, not the 1052897"), std::string::npos) << read.message();
  Status check = driver->CheckUnchanged();
  EXPECT_EQ(check.code(), EIO);
  EXPECT_NE(check.message().find("now has 1056993 bytes"), std::string::npos) << check.message();
  server_->SetMode("modified");
  check = driver->CheckUnchanged();
  EXPECT_EQ(check.code(), EIO);
  EXPECT_NE(check.message().find("the image changed on the server"), std::string::npos) << check.message();
  server_->SetMode("ok");
  EXPECT_TRUE(driver->CheckUnchanged().ok());
}

TEST_F(HttpDriverTest, AServerThatIgnoresRangesIsRefusedAtOpen) {
  server_->SetMode("ignore-range");
  std::unique_ptr<BlockDriver> driver;
  Status opened = OpenHttpImage(server_->url(), options_, &driver);
  EXPECT_EQ(opened.code(), EIO);
  EXPECT_NE(opened.message().find("it ignores Range"), std::string::npos) << opened.message();
}

TEST_F(HttpDriverTest, TransientFailuresAreRetriedOnANewConnection) {
  auto driver = Open();
  ASSERT_TRUE(driver);
  std::string got;
  for (const char* mode : {"fail 2 503", "reset 2", "fail 3 500"}) {
    SCOPED_TRACE(mode);
    server_->ClearRequests();
    server_->SetMode(mode);
    ASSERT_TRUE(ReadInto(*driver, 4096, 8192, &got).ok());
    EXPECT_EQ(got, content_.substr(4096, 8192));
  }
  // Three failures and the one that worked (retries = 3).
  EXPECT_EQ(server_->Requests(),
            "GET bytes=4096-12287 fail 3 500\nGET bytes=4096-12287 fail 3 500\n"
            "GET bytes=4096-12287 fail 3 500\nGET bytes=4096-12287 ok\n");
}

TEST_F(HttpDriverTest, TriesThatRunOutAreEioAndALaterReadWorks) {
  auto driver = Open();
  ASSERT_TRUE(driver);
  server_->SetMode("fail 100 503");
  std::string got;
  Status read = ReadInto(*driver, 0, 4096, &got);
  EXPECT_EQ(read.code(), EIO);
  EXPECT_NE(read.message().find(server_->url() + ": GET bytes 0-4095: the server answered HTTP 503 (gave up after 4 "
                                                 "tries)"),
            std::string::npos)
      << read.message();
  server_->SetMode("ok");
  ASSERT_TRUE(ReadInto(*driver, 0, 4096, &got).ok());
  EXPECT_EQ(got, content_.substr(0, 4096));
}

TEST_F(HttpDriverTest, RetryAfterOfA429IsHonoured) {
  options_.max_backoff = milliseconds(5000);
  auto driver = Open();
  ASSERT_TRUE(driver);
  server_->SetMode("fail 1 429 1");
  const auto start = std::chrono::steady_clock::now();
  std::string got;
  ASSERT_TRUE(ReadInto(*driver, 0, 4096, &got).ok());
  // The wait is at least what the server asked for (the back-off is 10 ms).
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(1000));
  EXPECT_EQ(got, content_.substr(0, 4096));
}

TEST_F(HttpDriverTest, AStalledServerTimesOut) {
  options_.request_timeout = milliseconds(300);
  options_.retries = 1;
  auto driver = Open();
  ASSERT_TRUE(driver);
  server_->SetMode("stall 3");
  std::string got;
  Status read = ReadInto(*driver, 0, 4096, &got);
  EXPECT_EQ(read.code(), EIO);
  EXPECT_NE(read.message().find("timed out"), std::string::npos) << read.message();
  EXPECT_NE(read.message().find("gave up after 2 tries"), std::string::npos) << read.message();
}

TEST_F(HttpDriverTest, NoServerIsEioNamingTheUrl) {
  const std::string url = server_->url();
  server_->Stop();
  options_.retries = 1;
  std::unique_ptr<BlockDriver> driver;
  Status opened = OpenHttpImage(url, options_, &driver);
  EXPECT_EQ(opened.code(), EIO);
  EXPECT_NE(opened.message().find(url + ": GET bytes 0-0: "), std::string::npos) << opened.message();
}

TEST_F(HttpDriverTest, CredentialsFromTheUrlTheOptionsOrANetrcFileAndNeverInAMessage) {
  server_->SetMode("auth alice s3cr%t");
  std::unique_ptr<BlockDriver> driver;
  // None: refused, saying so.
  Status opened = OpenHttpImage(server_->url(), options_, &driver);
  EXPECT_EQ(opened.code(), EACCES);
  EXPECT_NE(opened.message().find("HTTP 401"), std::string::npos) << opened.message();
  // In the URL (percent-encoded there).
  const std::string with = server_->url("alice:s3cr%25t@");
  ASSERT_TRUE(OpenHttpImage(with, options_, &driver).ok());
  EXPECT_EQ(driver->path(), server_->url());
  std::string got;
  ASSERT_TRUE(ReadInto(*driver, 0, 100, &got).ok());
  EXPECT_EQ(got, content_.substr(0, 100));
  // Wrong ones in the URL: the message names the URL without them.
  opened = OpenHttpImage(server_->url("alice:wrong-pw@"), options_, &driver);
  EXPECT_EQ(opened.code(), EACCES);
  EXPECT_EQ(opened.message().find("wrong-pw"), std::string::npos) << opened.message();
  EXPECT_NE(opened.message().find(server_->url()), std::string::npos) << opened.message();
  // By the URL without them, as the YAML loader passes them.
  RemoteOptions by_uri = options_;
  by_uri.uri_credentials[server_->url()] = {"alice", "s3cr%t"};
  ASSERT_TRUE(OpenHttpImage(server_->url(), by_uri, &driver).ok());
  // From a netrc file.
  const std::string netrc = dir_.path() + "/netrc";
  std::ofstream(netrc) << "machine 127.0.0.1 login alice password s3cr%t\n";
  RemoteOptions by_file = options_;
  by_file.credentials_file = netrc;
  ASSERT_TRUE(OpenHttpImage(server_->url(), by_file, &driver).ok());
  ASSERT_TRUE(ReadInto(*driver, 5000, 100, &got).ok());
  EXPECT_EQ(got, content_.substr(5000, 100));
}

// A certificate for `subject_alt_name`, its own authority, as dir/cert.pem
// and dir/key.pem.
void MakeCertificate(const std::string& dir, const std::string& subject_alt_name) {
  const corfs::testing::CommandResult made =
      corfs::testing::RunCommand({"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                                  "-subj", "/CN=corfs-test", "-addext", "subjectAltName=" + subject_alt_name, "-keyout",
                                  dir + "/key.pem", "-out", dir + "/cert.pem"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
}

TEST_F(HttpDriverTest, HttpsIsVerifiedAgainstTheSystemsAuthoritiesAndCaFile) {
  server_->Stop();
  MakeCertificate(dir_.path(), "IP:127.0.0.1");
  TestServer https(dir_.path(), /*tls=*/true);
  ASSERT_TRUE(https.running());
  std::unique_ptr<BlockDriver> driver;
  // Not signed by an authority the system trusts: refused, saying why.
  Status opened = OpenHttpImage(https.url(), options_, &driver);
  EXPECT_EQ(opened.code(), EIO);
  EXPECT_NE(opened.message().find("certificate"), std::string::npos) << opened.message();
  EXPECT_NE(opened.message().find(https.url()), std::string::npos) << opened.message();
  // With the test's authority as ca_file: read.
  options_.ca_file = dir_.path() + "/cert.pem";
  opened = OpenHttpImage(https.url(), options_, &driver);
  ASSERT_TRUE(opened.ok()) << opened.message();
  std::string got;
  ASSERT_TRUE(ReadInto(*driver, 1000, 5000, &got).ok());
  EXPECT_EQ(got, content_.substr(1000, 5000));
}

TEST_F(HttpDriverTest, HttpsToAServerWhoseCertificateNamesAnotherHostIsRefused) {
  server_->Stop();
  MakeCertificate(dir_.path(), "DNS:other.example");
  TestServer https(dir_.path(), /*tls=*/true);
  ASSERT_TRUE(https.running());
  options_.ca_file = dir_.path() + "/cert.pem";
  std::unique_ptr<BlockDriver> driver;
  Status opened = OpenHttpImage(https.url(), options_, &driver);
  EXPECT_EQ(opened.code(), EIO);
  EXPECT_NE(opened.message().find("127.0.0.1"), std::string::npos) << opened.message();
}

TEST_F(HttpDriverTest, AnEmptyFileHasSizeZero) {
  { std::ofstream empty(dir_.path() + "/image.raw", std::ios::trunc); }
  auto driver = Open();
  ASSERT_TRUE(driver);
  EXPECT_EQ(driver->size(), 0U);
  std::string got;
  ASSERT_TRUE(ReadInto(*driver, 0, 10, &got).ok());
  EXPECT_EQ(got, std::string(10, '\0'));
}

}  // namespace
}  // namespace corfs::overlay
