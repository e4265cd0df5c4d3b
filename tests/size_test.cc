#include "common/size.h"

#include <gtest/gtest.h>

namespace corfs {
namespace {

uint64_t Parsed(const char* text) {
  uint64_t value = 0;
  Status status = ParseSize(text, &value);
  EXPECT_TRUE(status.ok()) << text << ": " << status.message();
  return value;
}

TEST(ParseSize, AcceptsPlainNumbersAndBinaryUnits) {
  EXPECT_EQ(Parsed("65536"), 65536u);
  EXPECT_EQ(Parsed("64K"), 65536u);
  EXPECT_EQ(Parsed("64k"), 65536u);
  EXPECT_EQ(Parsed("10G"), 10ull << 30);
  EXPECT_EQ(Parsed("200MiB"), 200ull << 20);
  EXPECT_EQ(Parsed("1.5K"), 1536u);
  EXPECT_EQ(Parsed("2T"), 2ull << 40);
  EXPECT_EQ(Parsed("0"), 0u);
}

TEST(ParseSize, RejectsGarbageWithAMessage) {
  uint64_t value = 0;
  for (const char* bad : {"", "-1", "-5G", "abc", "10X", "10 X", "1 0G", "1.3", "G", "99999999999E"}) {
    Status status = ParseSize(bad, &value);
    EXPECT_FALSE(status.ok()) << bad;
    EXPECT_FALSE(status.message().empty());
  }
}

TEST(ParseSize, AcceptsASpaceBeforeTheUnit) {
  EXPECT_EQ(Parsed("10 G"), 10ull << 30);
  EXPECT_EQ(Parsed("64 KiB"), 65536u);
  EXPECT_EQ(Parsed(" 1.5 M "), 1536ull << 10);
  EXPECT_EQ(Parsed("40 B"), 40u);
}

TEST(ParseSize, UnitErrorsNameTheAcceptedUnits) {
  uint64_t value = 0;
  for (const char* bad : {"10X", "10 X", "5 gigs", "abc"}) {
    Status status = ParseSize(bad, &value);
    ASSERT_FALSE(status.ok()) << bad;
    EXPECT_NE(status.message().find("K, M, G, T"), std::string::npos) << bad << ": " << status.message();
  }
  EXPECT_NE(ParseSize("10 X", &value).message().find("'X'"), std::string::npos);
}

TEST(SizeHasUnit, TellsBareNumbersFromSizesWithUnits) {
  EXPECT_FALSE(SizeHasUnit("40"));
  EXPECT_FALSE(SizeHasUnit(" 1.5 "));
  EXPECT_TRUE(SizeHasUnit("40B"));
  EXPECT_TRUE(SizeHasUnit("10 G"));
  EXPECT_TRUE(SizeHasUnit("64KiB"));
}

TEST(FormatSize, IsReadable) {
  EXPECT_EQ(FormatSize(100), "100 B");
  EXPECT_EQ(FormatSize(1536), "1.5 KiB");
  EXPECT_EQ(FormatSize(1ull << 30), "1 GiB");
}

}  // namespace
}  // namespace corfs
