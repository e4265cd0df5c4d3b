// The `corfs` command line, run as a program (no shell): create refuses bad
// arguments with a message and creates nothing; info --json is valid JSON
// and shows what was written; check tells a sound overlay from a damaged one;
// the conventions every command shares (help, --version, exit codes 0/1/2,
// qemu-img's -f/-F/-o/--output, NAME.cor naming the overlay).

#include <gtest/gtest.h>

#include <sys/stat.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "overlay/overlay.h"
#include "tests/test_support.h"

#ifndef CORFS_BINARY
#error "CORFS_BINARY must name the corfs executable"
#endif

namespace corfs {
namespace {

using namespace std::chrono_literals;
using testing::CommandResult;
using testing::RunCommand;
using testing::TempDir;

std::string Describe(const CommandResult& r) {
  return "exit " + std::to_string(r.exit_code) + "\nstdout: " + r.out + "\nstderr: " + r.err;
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::mt19937_64 rng(11);
    backing_ = testing::MakeRandomSparseLayer(dir_.File("template.raw"), kBackingSize, rng, 0.5);
  }

  CommandResult Corfs(std::vector<std::string> args) {
    args.insert(args.begin(), CORFS_BINARY);
    return RunCommand(args);
  }

  // `corfs create` fails with a message and leaves the folder as it was.
  void ExpectCreateRefused(const std::vector<std::string>& extra, const std::string& what) {
    SCOPED_TRACE(what);
    const std::vector<std::string> names = testing::ListDir(dir_.path());
    std::vector<std::string> args = {"create", dir_.File("new.img")};
    args.insert(args.end(), extra.begin(), extra.end());
    CommandResult r = Corfs(args);
    EXPECT_NE(r.exit_code, 0) << Describe(r);
    EXPECT_NE(r.exit_code, -1) << "crashed: " << Describe(r);
    EXPECT_FALSE(r.err.empty()) << Describe(r);
    EXPECT_EQ(testing::ListDir(dir_.path()), names) << "a file appeared: " << Describe(r);
  }

  static constexpr uint64_t kBackingSize = 1024 * 1024;
  TempDir dir_;
  testing::SparseLayer backing_;
};

TEST_F(CliTest, CreateRefusesBadSizes) {
  for (std::string size : {"-1", "abc", "0", "10X", ""}) {
    ExpectCreateRefused({"--backing", backing_.path, "--size=" + size}, "--size=" + size);
  }
  ExpectCreateRefused({"--backing", backing_.path, "--size", "abc"}, "--size abc");
  ExpectCreateRefused({"--backing", backing_.path, "--size", "-1"}, "--size -1");
  // Without a backing image, --size is required.
  ExpectCreateRefused({}, "no backing, no size");
}

TEST_F(CliTest, CreateRefusesBadClusterSizes) {
  for (std::string size : {"3K", "1K", "2048", "4M", "abc", "0", "-64K", "96K"}) {
    ExpectCreateRefused({"--backing", backing_.path, "--cluster-size=" + size}, "--cluster-size=" + size);
  }
}

TEST_F(CliTest, CreateRefusesAMissingBacking) {
  ExpectCreateRefused({"--backing", dir_.File("nope.raw")}, "missing backing");
  ExpectCreateRefused({"--backing", backing_.path, "--backing", dir_.File("nope.raw")}, "missing second backing");
  CommandResult r = Corfs({"create", dir_.File("new.img"), "--backing", dir_.File("nope.raw")});
  EXPECT_NE(r.err.find("nope.raw"), std::string::npos) << Describe(r);
}

TEST_F(CliTest, CreateRefusesToReplaceWithoutForce) {
  const std::string path = dir_.File("disk.img");
  CommandResult r = Corfs({"create", path, "--backing", backing_.path});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  testing::FilesSnapshot before({path, overlay::PartialDataPath(path), overlay::MetadataPath(path)});
  r = Corfs({"create", path, "--backing", backing_.path, "--cluster-size", "4K"});
  EXPECT_NE(r.exit_code, 0) << Describe(r);
  EXPECT_NE(r.err.find("exists"), std::string::npos) << Describe(r);
  EXPECT_EQ(before.Differences(), "");
  r = Corfs({"create", path, "--backing", backing_.path, "--cluster-size", "4K", "--force"});
  EXPECT_EQ(r.exit_code, 0) << Describe(r);
}

TEST_F(CliTest, InfoJsonShowsAllocatedBytesAfterWrites) {
  const std::string path = dir_.File("disk.img");
  CommandResult r = Corfs({"create", path, "--backing", backing_.path, "--size", "3M", "--cluster-size", "64K"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  // Unfinished: the data file is NAME.part, and no NAME passes for the disk.
  EXPECT_FALSE(testing::FileExists(path));
  EXPECT_TRUE(testing::FileExists(overlay::PartialDataPath(path)));
  EXPECT_TRUE(testing::FileExists(overlay::MetadataPath(path)));
  EXPECT_NE(r.out.find(overlay::PartialDataPath(path)), std::string::npos) << Describe(r);

  r = Corfs({"info", path, "--json"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  nlohmann::json info = nlohmann::json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(info.is_discarded()) << "not JSON: " << r.out;
  EXPECT_EQ(info["virtual-size"], 3u << 20);
  EXPECT_EQ(info["cluster-size"], 65536u);
  EXPECT_EQ(info["clusters"], 48u);
  EXPECT_EQ(info["allocated-bytes"], 0u);
  EXPECT_EQ(info["state"], "has-backing");
  EXPECT_EQ(info["data-file"], overlay::PartialDataPath(path));
  ASSERT_TRUE(info["backing-chain"].is_array());
  ASSERT_EQ(info["backing-chain"].size(), 1u);
  EXPECT_EQ(info["backing-chain"][0]["size"], kBackingSize);
  EXPECT_EQ(info["backing-chain"][0]["format"], "raw");

  {
    std::unique_ptr<overlay::Overlay> image;
    overlay::OpenOptions open;
    open.commit_interval = 0ms;
    ASSERT_TRUE(overlay::Overlay::Open(path, open, &image).ok());
    ASSERT_TRUE(image->Write(100, std::string_view("x")).ok());             // cluster 0
    ASSERT_TRUE(image->Write(5 * 65536 - 1, std::string_view("yz")).ok());  // clusters 4 and 5
    ASSERT_TRUE(image->Write(40 * 65536, std::string(65536, 'w')).ok());    // cluster 40
    ASSERT_TRUE(image->Close().ok());
  }
  r = Corfs({"info", path, "--json"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  info = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(info.is_discarded()) << "not JSON: " << r.out;
  EXPECT_EQ(info["allocated-clusters"], 4u);
  EXPECT_EQ(info["allocated-bytes"], 4u * 65536);
  EXPECT_GT(info["allocated-percent"].get<double>(), 8.0);

  // Plain text works too.
  r = Corfs({"info", path});
  EXPECT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_NE(r.out.find("template.raw"), std::string::npos) << Describe(r);

  // And info on something that is not an overlay fails with a message.
  r = Corfs({"info", backing_.path, "--json"});
  EXPECT_NE(r.exit_code, 0) << Describe(r);
  EXPECT_FALSE(r.err.empty());
}

TEST_F(CliTest, CheckTellsSoundFromCorrupt) {
  const std::string path = dir_.File("disk.img");
  CommandResult r = Corfs({"create", path, "--backing", backing_.path});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  r = Corfs({"check", path});
  EXPECT_EQ(r.exit_code, 0) << Describe(r);

  // Damage one header slot's checksum: still sound (the other slot is used), with a note.
  std::string meta = testing::ReadFileBytes(overlay::MetadataPath(path));
  testing::PatchFile(overlay::MetadataPath(path), 40, std::string(1, static_cast<char>(meta[40] ^ 1)));
  r = Corfs({"check", path});
  EXPECT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_NE(r.out.find("note"), std::string::npos) << Describe(r);

  // Both slots: unsound.
  testing::PatchFile(overlay::MetadataPath(path), overlay::kHeaderSlotSize + 40,
                     std::string(1, static_cast<char>(meta[overlay::kHeaderSlotSize + 40] ^ 1)));
  testing::FilesSnapshot before({path, overlay::PartialDataPath(path), overlay::MetadataPath(path)});
  r = Corfs({"check", path});
  EXPECT_NE(r.exit_code, 0) << Describe(r);
  EXPECT_NE(r.err.find("checksum"), std::string::npos) << Describe(r);
  EXPECT_EQ(before.Differences(), "") << "check changes nothing";

  // A data file of the wrong size, with a sound header.
  testing::PatchFile(overlay::MetadataPath(path), 0, meta.substr(0, overlay::kBitmapOffset));
  r = Corfs({"check", path});
  EXPECT_EQ(r.exit_code, 0) << Describe(r);
  testing::TruncateFile(overlay::PartialDataPath(path), 4096);
  r = Corfs({"check", path});
  EXPECT_NE(r.exit_code, 0) << Describe(r);
  EXPECT_FALSE(r.err.empty());

  r = Corfs({"check", dir_.File("nothing.img")});
  EXPECT_NE(r.exit_code, 0) << Describe(r);
}

TEST_F(CliTest, VersionAndHelp) {
  CommandResult r = Corfs({"--version"});
  EXPECT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(r.out, "corfs 0.1.0\n") << Describe(r);

  r = Corfs({"help"});
  EXPECT_EQ(r.exit_code, 0) << Describe(r);
  for (const char* command : {"create", "info", "check", "mount", "stream", "status", "help"}) {
    EXPECT_NE(r.out.find(command), std::string::npos) << command << ": " << Describe(r);
  }
  EXPECT_EQ(r.out, Corfs({"--help"}).out);

  for (const char* command : {"create", "info", "stream", "threshold", "status"}) {
    SCOPED_TRACE(command);
    CommandResult help = Corfs({"help", command});
    CommandResult flag = Corfs({command, "--help"});
    EXPECT_EQ(help.exit_code, 0) << Describe(help);
    EXPECT_EQ(flag.exit_code, 0) << Describe(flag);
    EXPECT_EQ(help.out, flag.out);
    EXPECT_NE(help.out.find(std::string("corfs ") + command), std::string::npos) << Describe(help);
  }
}

TEST_F(CliTest, UsageErrorsExitTwoAndSayWhereTheHelpIs) {
  CommandResult r = Corfs({"foo"});
  EXPECT_EQ(r.exit_code, 2) << Describe(r);
  EXPECT_NE(r.err.find("unknown command 'foo'"), std::string::npos) << Describe(r);
  EXPECT_NE(r.err.find("create, info, check, mount"), std::string::npos) << Describe(r);
  r = Corfs({"help", "foo"});
  EXPECT_EQ(r.exit_code, 2) << Describe(r);
  EXPECT_NE(r.err.find("unknown command 'foo'"), std::string::npos) << Describe(r);

  const std::vector<std::vector<std::string>> usage_errors = {
      {},
      {"--bogus"},
      {"create"},
      {"create", dir_.File("new.img"), "--bogus"},
      {"create", dir_.File("new.img"), "-b", backing_.path, "--size", "abc"},
      {"info"},
      {"info", "a", "b"},
      {"info", dir_.File("x.img"), "--output=xml"},
      {"stream"},
      {"threshold", "img"},
  };
  for (const std::vector<std::string>& args : usage_errors) {
    SCOPED_TRACE(::testing::PrintToString(args));
    r = Corfs(args);
    EXPECT_EQ(r.exit_code, 2) << Describe(r);
    EXPECT_NE(r.err.find("run 'corfs help"), std::string::npos) << Describe(r);
  }
  r = Corfs({"create"});
  EXPECT_NE(r.err.find("run 'corfs help create'"), std::string::npos) << Describe(r);

  // A failure, not a usage error: exit 1.
  r = Corfs({"info", dir_.File("missing.img")});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
}

TEST_F(CliTest, CreateTakesQemuImgOptions) {
  // -o cluster_size, -F for the backing format, the size after the file name.
  const std::string path = dir_.File("disk.img");
  CommandResult r =
      Corfs({"create", "-f", "corfs", "-o", "cluster_size=4K", "-b", backing_.path, "-F", "raw", path, "2M"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  r = Corfs({"info", "--output=json", path});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  nlohmann::json info = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(info.is_discarded()) << "not JSON: " << r.out;
  EXPECT_EQ(info["cluster-size"], 4096u);
  EXPECT_EQ(info["virtual-size"], 2u << 20);
  EXPECT_EQ(info["backing-chain"][0]["format"], "raw");
  EXPECT_EQ(Corfs({"info", "--output", "json", path}).out, Corfs({"info", "--json", path}).out);
  EXPECT_EQ(Corfs({"info", "--output=human", path}).out, Corfs({"info", path}).out);

  // Refused, with a message that says why, and nothing made.
  for (const auto& [args, message] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"-o", "colour=red"}, "unknown option 'colour'"},
           {{"-o", "cluster_size=4K,preallocation=full"}, "unknown option 'preallocation'"},
           {{"-o", "cluster_size"}, "needs a value"},
           {{"-o", "cluster_size=4K", "--cluster-size", "8K"}, "disagree"},
           {{"-f", "qcow2"}, "-f takes only 'corfs'"},
           {{"--size", "1M", "2M"}, "disagree"},
       }) {
    SCOPED_TRACE(message);
    std::vector<std::string> all = {"--backing", backing_.path};
    all.insert(all.end(), args.begin(), args.end());
    ExpectCreateRefused(all, message);
    std::vector<std::string> cmd = {"create", dir_.File("new.img")};
    cmd.insert(cmd.end(), all.begin(), all.end());
    r = Corfs(cmd);
    EXPECT_EQ(r.exit_code, 2) << Describe(r);
    EXPECT_NE(r.err.find(message), std::string::npos) << Describe(r);
  }
  r = Corfs({"create", "-o", "help", dir_.File("new.img")});
  EXPECT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_NE(r.out.find("cluster_size"), std::string::npos) << Describe(r);
  EXPECT_FALSE(testing::FileExists(dir_.File("new.img")));
  r = Corfs({"info", "-f", "raw", path});
  EXPECT_EQ(r.exit_code, 2) << Describe(r);

  // Replacing without --force says how to replace.
  r = Corfs({"create", path, "-b", backing_.path});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_NE(r.err.find("use --force"), std::string::npos) << Describe(r);
}

TEST_F(CliTest, TheMetadataFileNamesTheOverlay) {
  const std::string path = dir_.File("disk.img");
  ASSERT_EQ(Corfs({"create", path, "-b", backing_.path}).exit_code, 0);
  CommandResult by_data = Corfs({"info", "--json", path});
  CommandResult by_meta = Corfs({"info", "--json", overlay::MetadataPath(path)});
  EXPECT_EQ(by_meta.exit_code, 0) << Describe(by_meta);
  EXPECT_EQ(by_meta.out, by_data.out);
  CommandResult r = Corfs({"check", overlay::MetadataPath(path)});
  EXPECT_EQ(r.exit_code, 0) << Describe(r);
  r = Corfs({"info", overlay::MetadataPath(path)});
  EXPECT_NE(r.out.find("state:          has backing"), std::string::npos) << Describe(r);

  // create is told the data file's name, not its metadata's.
  r = Corfs({"create", dir_.File("other.img.cor"), "-b", backing_.path});
  EXPECT_EQ(r.exit_code, 2) << Describe(r);
  EXPECT_NE(r.err.find("other.img (its .cor"), std::string::npos) << Describe(r);
}

// A mistake in a template used by two images is one mistake: said once.
TEST_F(CliTest, MountSaysATemplatesMistakeOnce) {
  const std::string yaml = dir_.File("two.yaml");
  std::ofstream(yaml) << "templates:\n"
                         "  app: [nope.raw, template.raw]\n"
                         "images:\n"
                         "  a: {overlay: a.img, backing: app}\n"
                         "  b: {overlay: b.img, backing: app}\n";
  CommandResult r = Corfs({"mount", yaml, dir_.File("mnt")});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  const size_t first = r.err.find("templates.app[0]");
  ASSERT_NE(first, std::string::npos) << Describe(r);
  EXPECT_EQ(r.err.find("templates.app[0]", first + 1), std::string::npos) << "said twice: " << Describe(r);
}

// A mount never replaces a file that is not an overlay, and says so without
// pointing at a --force it does not have.
TEST_F(CliTest, MountRefusesAFileThatIsNotAnOverlay) {
  const std::string yaml = dir_.File("one.yaml");
  std::ofstream(yaml) << "images:\n  a: {overlay: a.img, backing: [template.raw]}\n";
  std::ofstream(dir_.File("a.img")) << "someone's disk";
  ASSERT_EQ(::mkdir(dir_.File("mnt").c_str(), 0755), 0);
  const std::vector<std::string> names = testing::ListDir(dir_.path());
  CommandResult r = Corfs({"mount", yaml, dir_.File("mnt")});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_NE(r.err.find("is not a corfs overlay"), std::string::npos) << Describe(r);
  EXPECT_EQ(r.err.find("--force"), std::string::npos) << Describe(r);
  EXPECT_EQ(testing::ReadFileBytes(dir_.File("a.img")), "someone's disk");
  EXPECT_EQ(testing::ListDir(dir_.path()), names);
}

}  // namespace
}  // namespace corfs
