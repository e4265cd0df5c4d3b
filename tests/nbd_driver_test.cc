// NbdDriver against real NBD servers (nbdkit, qemu-nbd) that the tests
// start on 127.0.0.1 or on a Unix socket and stop by pid: size and reads,
// base:allocation of a sparse file, multi-conn, a failing server that
// recovers, a restarted server, a server gone for good, a server that lies
// about the export (size changed, export gone), request timeouts.

#include "overlay/remote/nbd_driver.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "test_support.h"

namespace corfs::overlay {
namespace {

using corfs::testing::TempDir;
using namespace std::chrono_literals;

// A port on 127.0.0.1 that nothing uses just now, below the ephemeral
// range: while a server is down, a client retrying to connect to a port in
// that range can be given the port itself as its own, connect to itself,
// and hold the port the restarted server needs.
int FreePort() {
  static std::mt19937 rng(std::random_device{}());
  int low = 32768;
  std::ifstream("/proc/sys/net/ipv4/ip_local_port_range") >> low;
  while (true) {
    const int port = std::uniform_int_distribution<int>(10000, low - 1)(rng);
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(static_cast<uint16_t>(port));
    const bool free = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
    ::close(fd);
    if (free) return port;
  }
}

// One NBD server process: started with `argv` (which must make it write
// `pid_file` once it accepts connections), stopped by its pid.
class Server {
 public:
  Server(std::vector<std::string> argv, std::string pid_file) : pid_file_(std::move(pid_file)) {
    ::unlink(pid_file_.c_str());
    pid_ = ::fork();
    if (pid_ == 0) {
      std::vector<char*> args;
      for (std::string& arg : argv) args.push_back(arg.data());
      args.push_back(nullptr);
      ::execvp(args[0], args.data());
      ::_exit(127);
    }
    for (int i = 0; i < 200 && !corfs::testing::FileExists(pid_file_); ++i) std::this_thread::sleep_for(25ms);
    EXPECT_TRUE(corfs::testing::FileExists(pid_file_)) << argv[0] << " did not start";
  }
  ~Server() { Stop(); }
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  void Stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  std::string pid_file_;
  pid_t pid_ = -1;
};

// nbdkit on 127.0.0.1:port serving `file`, with extra filters/parameters.
std::unique_ptr<Server> Nbdkit(const TempDir& dir, int port, const std::string& file,
                               const std::vector<std::string>& filters = {},
                               const std::vector<std::string>& params = {}) {
  std::vector<std::string> argv{"nbdkit", "-f",        "-P", dir.File("nbdkit.pid"),
                                "-i",     "127.0.0.1", "-p", std::to_string(port)};
  for (const std::string& filter : filters) argv.push_back("--filter=" + filter);
  argv.push_back("file");
  argv.push_back(file);
  argv.insert(argv.end(), params.begin(), params.end());
  return std::make_unique<Server>(argv, dir.File("nbdkit.pid"));
}

// qemu-nbd serving `file` (raw, read-only) as export `name` on a Unix
// socket.
std::unique_ptr<Server> QemuNbd(const TempDir& dir, const std::string& socket, const std::string& file,
                                const std::string& name) {
  return std::make_unique<Server>(std::vector<std::string>{"qemu-nbd", "-t", "-r", "-f", "raw", "-x", name, "-k",
                                                           socket, "--pid-file", dir.File("qemu-nbd.pid"), file},
                                  dir.File("qemu-nbd.pid"));
}

std::string TcpUri(int port) { return "nbd://127.0.0.1:" + std::to_string(port) + "/"; }

RemoteOptions FastRetries() {
  RemoteOptions options;
  options.connect_timeout = 2s;
  options.request_timeout = 2s;
  options.retries = 3;
  options.backoff = 20ms;
  options.max_backoff = 100ms;
  return options;
}

void WriteRandomFile(const std::string& path, size_t size, uint64_t seed) {
  std::string bytes(size, '\0');
  corfs::testing::FillSeeded(seed, bytes);
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<std::streamsize>(size));
}

std::string ReadRange(NbdDriver& driver, uint64_t offset, size_t length, Status* status) {
  std::string buf(length, 'x');
  *status = driver.Read(offset, buf);
  return buf;
}

class NbdDriverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    file_ = dir_.File("template.raw");
    WriteRandomFile(file_, 8 << 20, 15);
    content_ = corfs::testing::ReadFileBytes(file_);
  }

  // qemu-nbd serving the template on a Unix socket, with `extra` options;
  // opens a driver of `connections` over it.
  std::unique_ptr<Server> OpenOverQemuNbd(const std::vector<std::string>& extra, unsigned connections,
                                          std::unique_ptr<NbdDriver>* driver) {
    const std::string socket = dir_.File("nbd.sock");
    std::vector<std::string> command{"qemu-nbd",        "-t", "-r", "-f", "raw", "-k", socket, "--pid-file",
                                     dir_.File("q.pid")};
    command.insert(command.end(), extra.begin(), extra.end());
    command.push_back(file_);
    auto server = std::make_unique<Server>(command, dir_.File("q.pid"));
    RemoteOptions options = FastRetries();
    options.connections = connections;
    EXPECT_TRUE(NbdDriver::Open("nbd+unix:///?socket=" + socket, options, driver).ok());
    return server;
  }

  TempDir dir_;
  std::string file_;
  std::string content_;
};

TEST_F(NbdDriverTest, SizeAndReadsMatchTheFileOverTcp) {
  const int port = FreePort();
  auto server = Nbdkit(dir_, port, file_);
  std::unique_ptr<NbdDriver> driver;
  ASSERT_TRUE(NbdDriver::Open(TcpUri(port), FastRetries(), &driver).ok());
  EXPECT_EQ(driver->size(), content_.size());
  EXPECT_EQ(driver->path(), TcpUri(port));
  for (auto [offset, length] :
       std::vector<std::pair<uint64_t, size_t>>{{0, 4096}, {1, 1}, {12345, 70000}, {3 << 20, 5 << 20}, {0, 8 << 20}}) {
    Status status;
    EXPECT_TRUE(ReadRange(*driver, offset, length, &status) == content_.substr(offset, length)) << offset;
    EXPECT_TRUE(status.ok()) << status.message();
  }
  // Past the end: zeros.
  Status status;
  std::string tail = ReadRange(*driver, content_.size() - 10, 20, &status);
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(tail, content_.substr(content_.size() - 10) + std::string(10, '\0'));
  EXPECT_EQ(driver->Write(0, std::span<const char>(tail.data(), 1)).code(), EROFS);
  EXPECT_TRUE(driver->CheckUnchanged().ok());
}

TEST_F(NbdDriverTest, ReadsOverAUnixSocketFromQemuNbd) {
  const std::string socket = dir_.File("nbd.sock");
  auto server = QemuNbd(dir_, socket, file_, "disk");
  std::unique_ptr<NbdDriver> driver;
  const std::string uri = "nbd+unix:///disk?socket=" + socket;
  Status opened = NbdDriver::Open(uri, FastRetries(), &driver);
  ASSERT_TRUE(opened.ok()) << opened.message();
  EXPECT_EQ(driver->size(), content_.size());
  Status status;
  EXPECT_TRUE(ReadRange(*driver, 0, content_.size(), &status) == content_);
  EXPECT_TRUE(status.ok()) << status.message();
}

TEST_F(NbdDriverTest, BlockStatusOfASparseFile) {
  // 8 MiB: a hole, 1 MiB of data at 2 MiB, allocated zeros at 5 MiB, a
  // hole to the end.
  const std::string sparse = dir_.File("sparse.raw");
  std::ofstream(sparse, std::ios::binary).close();
  corfs::testing::TruncateFile(sparse, 8 << 20);
  corfs::testing::PatchFile(sparse, 2 << 20, std::string(1 << 20, 'd'));
  corfs::testing::PatchFile(sparse, 5 << 20, std::string(1 << 20, '\0'));
  const int port = FreePort();
  auto server = Nbdkit(dir_, port, sparse);
  std::unique_ptr<NbdDriver> driver;
  ASSERT_TRUE(NbdDriver::Open(TcpUri(port), FastRetries(), &driver).ok());
  BlockStatus status;
  ASSERT_TRUE(driver->GetBlockStatus(0, 8 << 20, &status).ok());
  EXPECT_EQ(status.allocation, Allocation::kUnallocated);
  EXPECT_EQ(status.length, 2u << 20);
  ASSERT_TRUE(driver->GetBlockStatus(2 << 20, 6 << 20, &status).ok());
  EXPECT_EQ(status.allocation, Allocation::kData);
  EXPECT_EQ(status.length, 1u << 20);
  ASSERT_TRUE(driver->GetBlockStatus((2 << 20) + 100, 4096, &status).ok());
  EXPECT_EQ(status.allocation, Allocation::kData);
  EXPECT_EQ(status.length, 4096u);
  ASSERT_TRUE(driver->GetBlockStatus(6 << 20, 2 << 20, &status).ok());
  EXPECT_EQ(status.allocation, Allocation::kUnallocated);
  EXPECT_EQ(status.length, 2u << 20);
}

TEST_F(NbdDriverTest, ParallelReadsUseSeveralConnectionsWithMultiConn) {
  const int port = FreePort();
  auto server = Nbdkit(dir_, port, file_);
  RemoteOptions options = FastRetries();
  options.connections = 3;
  std::unique_ptr<NbdDriver> driver;
  ASSERT_TRUE(NbdDriver::Open(TcpUri(port), options, &driver).ok());
  EXPECT_EQ(driver->max_connections(), 3u);  // nbdkit's file plugin allows multi-conn
  std::vector<std::thread> readers;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 8; ++t) {
    readers.emplace_back([&, t] {
      for (uint64_t offset = static_cast<uint64_t>(t) << 16; offset < content_.size(); offset += 1 << 19) {
        Status status;
        if (ReadRange(*driver, offset, 65536, &status) != content_.substr(offset, 65536) || !status.ok()) ++wrong;
      }
    });
  }
  for (std::thread& reader : readers) reader.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST_F(NbdDriverTest, OneConnectionWithoutMultiConn) {
  // qemu-nbd serving one client at a time does not offer multi-conn.
  std::unique_ptr<NbdDriver> driver;
  auto server = OpenOverQemuNbd({}, 4, &driver);
  ASSERT_NE(driver, nullptr);
  EXPECT_EQ(driver->max_connections(), 1u);
  Status status;
  EXPECT_TRUE(ReadRange(*driver, 4096, 1 << 20, &status) == content_.substr(4096, 1 << 20)) << status.message();
}

TEST_F(NbdDriverTest, TheIdentityCheckStaysWithinTheServersClientLimit) {
  // qemu-nbd -e 2 answers two clients at a time and leaves a third
  // unanswered: a check on a connection beyond the pool's two would wait
  // out the connect timeout and fail.
  std::unique_ptr<NbdDriver> driver;
  auto server = OpenOverQemuNbd({"-e", "2"}, 2, &driver);
  ASSERT_NE(driver, nullptr);
  ASSERT_EQ(driver->max_connections(), 2u);
  std::vector<std::thread> readers;  // parallel reads open both connections
  for (int t = 0; t < 4; ++t) {
    readers.emplace_back([&, t] {
      for (uint64_t offset = static_cast<uint64_t>(t) << 20; offset < content_.size(); offset += 4 << 20) {
        Status status;
        EXPECT_EQ(ReadRange(*driver, offset, 1 << 20, &status), content_.substr(offset, 1 << 20)) << status.message();
      }
    });
  }
  for (std::thread& reader : readers) reader.join();
  for (int i = 0; i < 3; ++i) {
    Status checked = driver->CheckUnchanged();
    EXPECT_TRUE(checked.ok()) << checked.message();
  }
  Status status;
  EXPECT_EQ(ReadRange(*driver, 4096, 65536, &status), content_.substr(4096, 65536)) << status.message();
}

TEST_F(NbdDriverTest, AServerErrorIsEioThenReadsWorkAgain) {
  const int port = FreePort();
  const std::string switch_file = dir_.File("fail-now");
  auto server =
      Nbdkit(dir_, port, file_, {"error"}, {"error-pread-rate=100%", "error-file=" + switch_file, "error=EIO"});
  std::unique_ptr<NbdDriver> driver;
  ASSERT_TRUE(NbdDriver::Open(TcpUri(port), FastRetries(), &driver).ok());
  std::ofstream(switch_file).close();
  Status status;
  ReadRange(*driver, 0, 4096, &status);
  EXPECT_EQ(status.code(), EIO);
  EXPECT_NE(status.message().find(TcpUri(port)), std::string::npos) << status.message();
  ::unlink(switch_file.c_str());
  EXPECT_TRUE(ReadRange(*driver, 0, 4096, &status) == content_.substr(0, 4096));
  EXPECT_TRUE(status.ok()) << status.message();
}

TEST_F(NbdDriverTest, ARestartedServerIsReconnectedTo) {
  const int port = FreePort();
  auto server = Nbdkit(dir_, port, file_);
  RemoteOptions options = FastRetries();
  options.retries = 20;
  options.backoff = 50ms;
  std::unique_ptr<NbdDriver> driver;
  ASSERT_TRUE(NbdDriver::Open(TcpUri(port), options, &driver).ok());
  Status status;
  ASSERT_TRUE(ReadRange(*driver, 0, 4096, &status) == content_.substr(0, 4096));
  server->Stop();
  // The server comes back while the read is retrying. (It is started by
  // this thread: a server started by a thread that then ends would get
  // its parent-death signal.)
  std::string read;
  std::thread reader([&] { read = ReadRange(*driver, 1 << 20, 4096, &status); });
  std::this_thread::sleep_for(300ms);
  server = Nbdkit(dir_, port, file_);
  reader.join();
  EXPECT_TRUE(status.ok()) << status.message();
  EXPECT_TRUE(read == content_.substr(1 << 20, 4096));
}

TEST_F(NbdDriverTest, AServerGoneForGoodIsEioAfterTheRetries) {
  const int port = FreePort();
  auto server = Nbdkit(dir_, port, file_);
  std::unique_ptr<NbdDriver> driver;
  ASSERT_TRUE(NbdDriver::Open(TcpUri(port), FastRetries(), &driver).ok());
  server->Stop();
  Status status;
  ReadRange(*driver, 0, 4096, &status);
  EXPECT_EQ(status.code(), EIO);
  EXPECT_NE(status.message().find(TcpUri(port)), std::string::npos) << status.message();
  EXPECT_NE(status.message().find("failed 4 times"), std::string::npos) << status.message();
  EXPECT_EQ(driver->CheckUnchanged().code(), EIO);
}

TEST_F(NbdDriverTest, AnExportThatChangedSizeIsRefused) {
  const int port = FreePort();
  auto server = Nbdkit(dir_, port, file_);
  std::unique_ptr<NbdDriver> driver;
  ASSERT_TRUE(NbdDriver::Open(TcpUri(port), FastRetries(), &driver).ok());
  server->Stop();
  const std::string bigger = dir_.File("bigger.raw");
  WriteRandomFile(bigger, 9 << 20, 16);
  server = Nbdkit(dir_, port, bigger);
  Status status;
  ReadRange(*driver, 0, 4096, &status);
  EXPECT_EQ(status.code(), EIO);
  EXPECT_NE(status.message().find("changed size"), std::string::npos) << status.message();
  Status unchanged = driver->CheckUnchanged();
  EXPECT_EQ(unchanged.code(), EIO);
  EXPECT_NE(unchanged.message().find("changed size"), std::string::npos) << unchanged.message();
}

TEST_F(NbdDriverTest, AnExportThatVanishedIsRefused) {
  const std::string socket = dir_.File("nbd.sock");
  auto server = QemuNbd(dir_, socket, file_, "disk");
  const std::string uri = "nbd+unix:///disk?socket=" + socket;
  std::unique_ptr<NbdDriver> driver;
  ASSERT_TRUE(NbdDriver::Open(uri, FastRetries(), &driver).ok());
  server->Stop();
  ::unlink(socket.c_str());
  server = QemuNbd(dir_, socket, file_, "other");
  Status status;
  ReadRange(*driver, 0, 4096, &status);
  EXPECT_EQ(status.code(), EIO);
  EXPECT_NE(status.message().find("no such export"), std::string::npos) << status.message();
  EXPECT_NE(status.message().find(uri), std::string::npos) << status.message();
  // Opening it is refused the same way.
  std::unique_ptr<NbdDriver> again;
  Status opened = NbdDriver::Open(uri, FastRetries(), &again);
  EXPECT_EQ(opened.code(), EIO);
  EXPECT_NE(opened.message().find("no such export"), std::string::npos) << opened.message();
}

TEST_F(NbdDriverTest, ASlowReplyTimesOut) {
  const int port = FreePort();
  auto server = Nbdkit(dir_, port, file_, {"delay"}, {"delay-read=5"});
  RemoteOptions options = FastRetries();
  options.request_timeout = 200ms;
  options.retries = 1;
  std::unique_ptr<NbdDriver> driver;
  ASSERT_TRUE(NbdDriver::Open(TcpUri(port), options, &driver).ok());
  Status status;
  ReadRange(*driver, 0, 4096, &status);
  EXPECT_EQ(status.code(), EIO);
  EXPECT_NE(status.message().find("request timeout"), std::string::npos) << status.message();
}

TEST_F(NbdDriverTest, NoServerIsAClearErrorAtOpen) {
  std::unique_ptr<NbdDriver> driver;
  const std::string uri = TcpUri(FreePort());
  Status opened = NbdDriver::Open(uri, FastRetries(), &driver);
  EXPECT_EQ(opened.code(), EIO);
  EXPECT_NE(opened.message().find(uri), std::string::npos) << opened.message();
}

}  // namespace
}  // namespace corfs::overlay
