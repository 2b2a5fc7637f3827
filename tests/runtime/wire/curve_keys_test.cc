// CURVE key generation and the key files `distri-cluster up` writes.
#include "runtime/wire/curve_keys.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "runtime/wire/zmq_context.h"

namespace distri::wire {
namespace {

class WireCurveKeysTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/distri_curve_keys_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Path(const std::string& name) const { return dir_ + "/" + name; }
  void WriteText(const std::string& path, const std::string& text, mode_t mode) {
    std::ofstream(path) << text;
    ASSERT_EQ(chmod(path.c_str(), mode), 0);
  }
  static mode_t Mode(const std::string& path) {
    struct stat st;
    EXPECT_EQ(stat(path.c_str(), &st), 0);
    return st.st_mode & 07777;
  }
  std::string dir_;
};

TEST_F(WireCurveKeysTest, CurveIsAvailable) {
  // The control plane cannot run without it; a libzmq lacking CURVE must fail loudly.
  Status s = CheckCurveSupport();
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_FALSE(ZmqVersionString().empty());
}

TEST_F(WireCurveKeysTest, GeneratedPairsAreValidDistinctAndMatch) {
  CurveKeyPair a = GenerateCurveKeyPair().value();
  CurveKeyPair b = GenerateCurveKeyPair().value();
  EXPECT_EQ(a.public_key.size(), kZ85KeyChars);
  EXPECT_EQ(a.secret_key.size(), kZ85KeyChars);
  EXPECT_TRUE(ValidateZ85Key(a.public_key, "pub").ok());
  EXPECT_NE(a.public_key, b.public_key);
  EXPECT_NE(a.secret_key, b.secret_key);
  EXPECT_EQ(DerivePublicKey(a.secret_key).value(), a.public_key);
}

TEST_F(WireCurveKeysTest, Z85Validation) {
  EXPECT_EQ(ValidateZ85Key("short", "server key").ToString(),
            "InvalidArgument: server key: expected a 40-character Z85 key, found 5 characters");
  EXPECT_EQ(ValidateZ85Key(std::string(40, '"'), "k").ToString(), "InvalidArgument: k: not valid Z85 text");
}

TEST_F(WireCurveKeysTest, KeyPairFileIsPrivateAndRoundTrips) {
  CurveKeyPair keys = GenerateCurveKeyPair().value();
  const std::string path = Path("head.key");
  ASSERT_TRUE(WriteKeyPairFile(path, keys).ok());
  EXPECT_EQ(Mode(path), 0600u);
  CurveKeyPair back = ReadKeyPairFile(path).value();
  EXPECT_EQ(back.public_key, keys.public_key);
  EXPECT_EQ(back.secret_key, keys.secret_key);
  // The public half can be read from the pair file as well.
  EXPECT_EQ(ReadPublicKeyFile(path).value(), keys.public_key);
  // Overwriting keeps 0600 even when the old file was wider.
  ASSERT_EQ(chmod(path.c_str(), 0644), 0);
  ASSERT_TRUE(WriteKeyPairFile(path, keys).ok());
  EXPECT_EQ(Mode(path), 0600u);
}

TEST_F(WireCurveKeysTest, ReadableSecretKeyFileIsRefused) {
  CurveKeyPair keys = GenerateCurveKeyPair().value();
  const std::string path = Path("node.key");
  ASSERT_TRUE(WriteKeyPairFile(path, keys).ok());
  ASSERT_EQ(chmod(path.c_str(), 0640), 0);
  Result<CurveKeyPair> r = ReadKeyPairFile(path);
  EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(r.status().message().find("has mode 0640"), std::string::npos) << r.status().ToString();
  EXPECT_NE(r.status().message().find("chmod 600 " + path), std::string::npos);
}

TEST_F(WireCurveKeysTest, KeyFileErrorsNameFileAndLine) {
  CurveKeyPair a = GenerateCurveKeyPair().value();
  CurveKeyPair b = GenerateCurveKeyPair().value();
  const std::string mismatched = Path("mismatch.key");
  WriteText(mismatched, "public-key = " + b.public_key + "\nsecret-key = " + a.secret_key + "\n", 0600);
  EXPECT_EQ(ReadKeyPairFile(mismatched).status().ToString(),
            "InvalidArgument: " + mismatched + ": public-key does not belong to secret-key");

  const std::string bad = Path("bad.key");
  WriteText(bad, "# comment\n\npublic-key = " + a.public_key + "\nsecret-key = tooshort\n", 0600);
  EXPECT_EQ(ReadKeyPairFile(bad).status().ToString(),
            "InvalidArgument: " + bad + ":4: secret-key: expected a 40-character Z85 key, found 8 characters");

  const std::string unknown = Path("unknown.key");
  WriteText(unknown, "private-key = " + a.secret_key + "\n", 0600);
  EXPECT_EQ(ReadKeyPairFile(unknown).status().code(), StatusCode::kParseError);

  const std::string pub = Path("head.pub");
  ASSERT_TRUE(WritePublicKeyFile(pub, a.public_key).ok());
  EXPECT_EQ(ReadPublicKeyFile(pub).value(), a.public_key);
  EXPECT_NE(ReadKeyPairFile(pub).status().message().find("no secret-key entry"), std::string::npos);

  EXPECT_EQ(ReadKeyPairFile(Path("absent.key")).status().code(), StatusCode::kNotFound);
}

TEST_F(WireCurveKeysTest, AuthorizedKeysRoundTripWithComments) {
  std::vector<AuthorizedKey> keys;
  for (const char* who : {"node gpu-01", "", "client cli"}) {
    keys.push_back({GenerateCurveKeyPair().value().public_key, who});
  }
  const std::string path = Path("authorized_keys");
  ASSERT_TRUE(WriteAuthorizedKeysFile(path, keys).ok());
  EXPECT_EQ(Mode(path), 0600u);
  std::vector<AuthorizedKey> back = ReadAuthorizedKeysFile(path).value();
  ASSERT_EQ(back.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(back[i].public_key, keys[i].public_key);
    EXPECT_EQ(back[i].comment, keys[i].comment);
  }
  WriteText(path, "# header\n" + keys[0].public_key + " ok\n\nnot-a-key here\n", 0600);
  EXPECT_EQ(ReadAuthorizedKeysFile(path).status().ToString(),
            "InvalidArgument: " + path + ":4: key: expected a 40-character Z85 key, found 9 characters");
}

}  // namespace
}  // namespace distri::wire
