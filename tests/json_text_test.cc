#include "common/json_text.h"

#include <gtest/gtest.h>

#include <string>

namespace corfs {
namespace {

std::string Nested(int depth) { return std::string(depth, '[') + std::string(depth, ']'); }

TEST(JsonTextTest, ParsesWhatNestsUpToTheLimit) {
  nlohmann::json out;
  ASSERT_EQ(ParseJsonText(Nested(kMaxJsonDepth), &out), JsonText::kOk);
  EXPECT_TRUE(out.is_array());
  ASSERT_EQ(ParseJsonText(R"({"a": {"b": [1, {"c": null}]}})", &out), JsonText::kOk);
  EXPECT_EQ(out["a"]["b"][1]["c"], nullptr);
}

TEST(JsonTextTest, RefusesDeeperNestingWithoutTouchingTheOutput) {
  nlohmann::json out = "kept";
  EXPECT_EQ(ParseJsonText(Nested(kMaxJsonDepth + 1), &out), JsonText::kTooDeep);
  EXPECT_EQ(ParseJsonText("{\"a\": " + Nested(100000) + "}", &out), JsonText::kTooDeep);
  EXPECT_EQ(out, "kept");
}

TEST(JsonTextTest, BracketsInsideStringsDoNotCount) {
  nlohmann::json out;
  const std::string deep_text = std::string(1000, '[') + "\\\"" + std::string(1000, '{');
  ASSERT_EQ(ParseJsonText("[\"" + deep_text + "\"]", &out), JsonText::kOk);
  EXPECT_EQ(out[0].get<std::string>().size(), 2001U);
}

TEST(JsonTextTest, RefusesWhatIsNotJson) {
  nlohmann::json out = "kept";
  EXPECT_EQ(ParseJsonText("{\"a\": ", &out), JsonText::kInvalid);
  EXPECT_EQ(ParseJsonText("", &out), JsonText::kInvalid);
  EXPECT_EQ(ParseJsonText("]]]]", &out), JsonText::kInvalid);
  EXPECT_EQ(out, "kept");
}

}  // namespace
}  // namespace corfs
