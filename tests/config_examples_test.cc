// Every YAML file in examples/ loads. The backing images an example names
// do not exist in the source tree, so each example is copied into a temporary
// folder, and the files its chains name (relative to it) are created there as
// small sparse files first. Each example also shows the feature it is named
// after.

#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <set>
#include <string>

#include <yaml-cpp/yaml.h>

#include "config/config_loader.h"
#include "test_support.h"

#ifndef CORFS_EXAMPLES_DIR
#error "CORFS_EXAMPLES_DIR must name the examples folder"
#endif

namespace corfs::config {
namespace {

namespace fs = std::filesystem;

std::vector<fs::path> ExampleFiles() {
  std::vector<fs::path> files;
  for (const fs::directory_entry& entry : fs::directory_iterator(CORFS_EXAMPLES_DIR)) {
    if (entry.path().extension() == ".yaml" || entry.path().extension() == ".yml") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

// The relative paths of backing images named in an example: strings of the
// chains under `templates:` and `backing:` that are not template names, and
// `path:` of map entries.
std::set<std::string> BackingFiles(const YAML::Node& root) {
  // A const node's operator[] gives an invalid node for a missing key.
  const YAML::Node template_map = root["templates"] ? root["templates"] : YAML::Node();
  const YAML::Node image_map = root["images"] ? root["images"] : YAML::Node();
  std::set<std::string> templates;
  if (template_map.IsMap()) {
    for (const auto& entry : template_map) templates.insert(entry.first.Scalar());
  }
  std::set<std::string> files;
  std::function<void(const YAML::Node&)> walk = [&](const YAML::Node& node) {
    if (node.IsSequence()) {
      for (const YAML::Node& element : node) walk(element);
    } else if (node.IsScalar()) {
      if (!templates.count(node.Scalar())) files.insert(node.Scalar());
    } else if (node.IsMap() && node["path"]) {
      files.insert(node["path"].Scalar());
    }
  };
  if (template_map.IsMap()) {
    for (const auto& entry : template_map) walk(entry.second);
  }
  if (image_map.IsMap()) {
    for (const auto& entry : image_map) {
      if (entry.second.IsMap() && entry.second["backing"]) walk(entry.second["backing"]);
    }
  }
  return files;
}

void CreateSparse(const fs::path& path, uint64_t size) {
  fs::create_directories(path.parent_path());
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT_GE(fd, 0) << path;
  ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(size)), 0);
  ::close(fd);
}

// Loads `example` from a temporary copy with its backing files in place.
void LoadExample(const fs::path& example, const corfs::testing::TempDir& dir, MountConfig* cfg) {
  const fs::path copy = fs::path(dir.path()) / example.filename();
  fs::copy_file(example, copy);
  for (const std::string& file : BackingFiles(YAML::LoadFile(example.string()))) {
    ASSERT_TRUE(fs::path(file).is_relative()) << example << ": keep backing paths relative so tests can create them";
    CreateSparse(fs::path(dir.path()) / file, uint64_t{1} << 30);
  }
  Status status = LoadMountConfig(copy.string(), cfg);
  ASSERT_TRUE(status.ok()) << example << ":\n" << status.message();
}

TEST(ConfigExamplesTest, EveryExampleLoads) {
  std::vector<fs::path> files = ExampleFiles();
  ASSERT_GE(files.size(), 6u) << CORFS_EXAMPLES_DIR;
  for (const fs::path& example : files) {
    SCOPED_TRACE(example.string());
    corfs::testing::TempDir dir;
    MountConfig cfg;
    LoadExample(example, dir, &cfg);
    EXPECT_FALSE(cfg.images.empty());
    EXPECT_TRUE(cfg.mountpoint.has_value()) << "examples name their mountpoint";
  }
}

// The feature each example is about, as the loaded configuration shows it.
TEST(ConfigExamplesTest, EachExampleShowsItsFeature) {
  using Check = std::function<bool(const MountConfig&)>;
  auto any = [](const std::function<bool(const ImageConfig&)>& pred) {
    return [pred](const MountConfig& cfg) { return std::any_of(cfg.images.begin(), cfg.images.end(), pred); };
  };
  const std::vector<std::pair<std::string, Check>> expectations = {
      {"single-image.yaml",
       [](const MountConfig& cfg) { return cfg.images.size() == 1 && cfg.images[0].backing.size() == 1; }},
      {"chain.yaml", any([](const ImageConfig& i) { return i.backing.size() >= 2; })},
      {"thin-clone.yaml", any([](const ImageConfig& i) { return !i.copy_on_read && !i.backing.empty(); })},
      {"streaming.yaml",
       any([](const ImageConfig& i) { return i.stream.auto_start && i.stream.speed > 0 && i.stream.base; })},
      {"write-threshold.yaml",
       any([](const ImageConfig& i) { return i.write_threshold.kind == WriteThreshold::Kind::kPercent; })},
      {"read-only.yaml", any([](const ImageConfig& i) { return i.read_only && !i.create; })},
  };
  for (const auto& [name, check] : expectations) {
    SCOPED_TRACE(name);
    const fs::path example = fs::path(CORFS_EXAMPLES_DIR) / name;
    ASSERT_TRUE(fs::exists(example));
    corfs::testing::TempDir dir;
    MountConfig cfg;
    LoadExample(example, dir, &cfg);
    EXPECT_TRUE(check(cfg));
  }
}

}  // namespace
}  // namespace corfs::config
