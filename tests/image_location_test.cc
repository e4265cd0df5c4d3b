// Names of images: what is a URI, which protocol it names, and the form
// without credentials that corfs records and shows.

#include "overlay/image_location.h"

#include <gtest/gtest.h>

namespace corfs::overlay {
namespace {

TEST(ImageLocation, ANameWithASchemeIsAUriAnythingElseAPath) {
  EXPECT_TRUE(IsUri("nbd://127.0.0.1:10809/export"));
  EXPECT_TRUE(IsUri("nbd+unix:///export?socket=/run/nbd.sock"));
  EXPECT_TRUE(IsUri("https://example.org/debian-12.qcow2"));
  EXPECT_FALSE(IsUri("/images/base.raw"));
  EXPECT_FALSE(IsUri("relative/base.raw"));
  EXPECT_FALSE(IsUri("a:b/c.img"));  // a colon alone does not make a scheme
  EXPECT_FALSE(IsUri("1http://x"));  // a scheme starts with a letter
  EXPECT_FALSE(IsUri(""));
}

TEST(ImageLocation, ProtocolsByScheme) {
  Protocol protocol = Protocol::kFile;
  ASSERT_TRUE(ParseProtocol("/base.raw", &protocol).ok());
  EXPECT_EQ(protocol, Protocol::kFile);
  for (const char* name :
       {"nbd://h/e", "NBD://h/e", "nbds://h/e", "nbd+unix:///e?socket=s", "nbds+unix:///e?socket=s"}) {
    ASSERT_TRUE(ParseProtocol(name, &protocol).ok()) << name;
    EXPECT_EQ(protocol, Protocol::kNbd) << name;
  }
  for (const char* name : {"http://h/x.raw", "https://h/x.qcow2"}) {
    ASSERT_TRUE(ParseProtocol(name, &protocol).ok()) << name;
    EXPECT_EQ(protocol, Protocol::kHttp) << name;
  }
}

TEST(ImageLocation, AnUnknownSchemeIsRefusedWithoutItsCredentials) {
  Protocol protocol = Protocol::kFile;
  Status refused = ParseProtocol("ftp://user:secret@h/x.raw", &protocol);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.message().find("'ftp'"), std::string::npos) << refused.message();
  EXPECT_EQ(refused.message().find("secret"), std::string::npos) << refused.message();
}

TEST(ImageLocation, RedactingDropsTheUserInformationOnly) {
  EXPECT_EQ(RedactCredentials("https://user:pa%40ss@h:8443/a/b.raw?x=1"), "https://h:8443/a/b.raw?x=1");
  EXPECT_EQ(RedactCredentials("http://user@h/x"), "http://h/x");
  EXPECT_EQ(RedactCredentials("http://h/x@y"), "http://h/x@y");  // an @ in the path is no user information
  EXPECT_EQ(RedactCredentials("nbd+unix:///e?socket=/s"), "nbd+unix:///e?socket=/s");
  EXPECT_EQ(RedactCredentials("/a@b/c.raw"), "/a@b/c.raw");
}

TEST(ImageLocation, UserInformationIsPercentDecoded) {
  UriUserInfo info = UserInfoOf("https://us%40r:p%3Ass%25@h:8443/a?x=1");
  EXPECT_TRUE(info.has);
  EXPECT_EQ(info.user, "us@r");
  EXPECT_EQ(info.password, "p:ss%");
  info = UserInfoOf("http://user@h/x");
  EXPECT_TRUE(info.has);
  EXPECT_EQ(info.user, "user");
  EXPECT_EQ(info.password, "");
  EXPECT_FALSE(UserInfoOf("http://h/x@y").has);
  EXPECT_FALSE(UserInfoOf("/a@b/c.raw").has);
}

}  // namespace
}  // namespace corfs::overlay
