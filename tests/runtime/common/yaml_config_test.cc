#include "runtime/common/yaml_config.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

namespace distri {
namespace {

constexpr const char* kCluster = R"(head:
  port: 6380
  log_level: info
nodes:
  - name: a
    gpus: 4
  - name: b
    gpus: four
    memory_gb: 1.5
    labels: [fast, nvlink]
)";

ConfigNode Root(const char* text) {
  auto doc = YamlDoc::LoadString(text, "cluster.yaml");
  EXPECT_TRUE(doc.ok()) << doc.status().ToString();
  return doc->root();
}

TEST(YamlConfig, ReadsValues) {
  ConfigNode root = Root(kCluster);
  EXPECT_EQ(*root["head"].GetInt("port", 1, 65535), 6380);
  EXPECT_EQ(*root["head"].GetInt("threads", 1, 64, 8), 8);  // absent: fallback
  EXPECT_EQ(*root["head"].GetEnum("log_level", {"debug", "info"}, "info"), "info");
  ASSERT_EQ(root["nodes"].size(), 2u);
  EXPECT_EQ(*root["nodes"][0].GetString("name"), "a");
  EXPECT_DOUBLE_EQ(*root["nodes"][1].GetDouble("memory_gb", 0, 1e6), 1.5);
  auto labels = root["nodes"][1].GetStringList("labels");
  ASSERT_TRUE(labels.ok());
  EXPECT_EQ(*labels, (std::vector<std::string>{"fast", "nvlink"}));
}

TEST(YamlConfig, WrongTypeNamesFileLineAndKey) {
  ConfigNode root = Root(kCluster);
  auto gpus = root["nodes"][1].GetInt("gpus", 0, 64);
  ASSERT_FALSE(gpus.ok());
  EXPECT_EQ(gpus.status().message(),
            "cluster.yaml:8:11: nodes[1].gpus: expected an integer in [0, 64], found 'four'");
}

TEST(YamlConfig, OutOfRange) {
  ConfigNode root = Root("head:\n  port: 70000\n");
  auto port = root["head"].GetInt("port", 1, 65535);
  ASSERT_FALSE(port.ok());
  EXPECT_EQ(port.status().message(),
            "cluster.yaml:2:9: head.port: expected an integer in [1, 65535], found 70000");
}

TEST(YamlConfig, MissingKeyPointsAtEnclosingMapping) {
  ConfigNode root = Root(kCluster);
  auto name = root["head"].GetString("name");
  ASSERT_FALSE(name.ok());
  EXPECT_EQ(name.status().message(), "cluster.yaml:2:3: head.name: is required");
}

TEST(YamlConfig, UnknownKeyWithSuggestion) {
  ConfigNode root = Root("head:\n  prot: 1\n");
  Status s = root["head"].CheckKeys({"port", "log_level"});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message(),
            "cluster.yaml:2:3: head.prot: unknown key (did you mean 'port'?); allowed keys here: "
            "port, log_level");
  EXPECT_TRUE(Root(kCluster)["head"].CheckKeys({"port", "log_level"}).ok());
}

TEST(YamlConfig, EnumListsChoices) {
  ConfigNode root = Root("mode: fastest\n");
  auto mode = root.GetEnum("mode", {"pack", "spread"}, "pack");
  ASSERT_FALSE(mode.ok());
  EXPECT_EQ(mode.status().message(),
            "cluster.yaml:1:7: mode: expected one of pack, spread, found 'fastest'");
}

TEST(YamlConfig, StructureErrors) {
  ConfigNode root = Root("nodes: 3\nhead: [1, 2]\n");
  EXPECT_EQ(root["nodes"].ExpectSequence().message(), "cluster.yaml:1:8: nodes: expected a list, found '3'");
  EXPECT_EQ(root["head"].ExpectMap().message(),
            "cluster.yaml:2:7: head: expected a mapping of keys, found 'a list'");
  EXPECT_FALSE(root["head"].GetString("x").ok());
  auto scalar = root.GetString("head");
  ASSERT_FALSE(scalar.ok());
  EXPECT_EQ(scalar.status().message(), "cluster.yaml:2:7: head: expected a single value, found a list");
  EXPECT_TRUE(root["missing"].ExpectMap(/*optional=*/true).ok());
}

TEST(YamlConfig, BoolAndDouble) {
  ConfigNode root = Root("a: yes\nb: maybe\nc: nan\n");
  EXPECT_TRUE(*root.GetBool("a"));
  EXPECT_EQ(root.GetBool("b").status().message(), "cluster.yaml:2:4: b: expected true or false, found 'maybe'");
  EXPECT_FALSE(root.GetDouble("c", 0, 1).ok());
}

TEST(YamlConfig, ParseErrorNamesLine) {
  auto doc = YamlDoc::LoadString("head:\n  port: [1, 2\nnodes: x\n", "bad.yaml");
  ASSERT_FALSE(doc.ok());
  EXPECT_EQ(doc.status().code(), StatusCode::kParseError);
  EXPECT_EQ(doc.status().message().rfind("bad.yaml:", 0), 0u) << doc.status().message();
  EXPECT_NE(doc.status().message().find("invalid YAML"), std::string::npos);
}

TEST(YamlConfig, LoadFile) {
  auto missing = YamlDoc::LoadFile("/nonexistent/cluster.yaml");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().message(), "cannot open config file /nonexistent/cluster.yaml");

  std::string path = ::testing::TempDir() + "/distri_yaml_test.yaml";
  { std::ofstream(path) << "head:\n  port: x\n"; }
  auto doc = YamlDoc::LoadFile(path);
  ASSERT_TRUE(doc.ok());
  auto port = doc->root()["head"].GetInt("port", 1, 65535);
  EXPECT_EQ(port.status().message(), path + ":2:9: head.port: expected an integer in [1, 65535], found 'x'");
  std::remove(path.c_str());
}

}  // namespace
}  // namespace distri
