#include "runtime/cli/cluster_config.h"

#include <cstdlib>
#include <map>
#include <set>

#include "runtime/common/env_var.h"
#include "runtime/common/yaml_config.h"

namespace distri::cli {
namespace {

Status ParseGpus(const ConfigNode& node, std::string* out) {
  const ConfigNode g = node["gpus"];
  if (g.IsNull()) return Status::Ok();
  if (g.IsSequence()) {
    DISTRI_ASSIGN_OR_RETURN(std::vector<std::string> items, node.GetStringList("gpus"));
    std::string list;
    for (const std::string& item : items) {
      if (item.empty() || item.size() > 3 || item.find_first_not_of("0123456789") != std::string::npos) {
        return node.Error("gpus", "expected GPU indices, found '" + item + "'");
      }
      list += (list.empty() ? "" : ",") + item;
    }
    *out = list.empty() ? "none" : list;
    return Status::Ok();
  }
  DISTRI_ASSIGN_OR_RETURN(std::string s, node.GetString("gpus"));
  if (s != "all" && s != "none") {
    for (char c : s) {
      if (!(c == ',' || (c >= '0' && c <= '9'))) return node.Error("gpus", "expected all, none or a list of GPU indices, found '" + s + "'");
    }
  }
  *out = s;
  return Status::Ok();
}

// `env` of `parent` (a mapping of variable names to scalars, or absent) into *out, replacing
// values of the same names.
Status ParseEnv(const ConfigNode& parent, std::map<std::string, std::string>* out) {
  const ConfigNode env = parent["env"];
  DISTRI_RETURN_IF_ERROR(env.ExpectMap(/*optional=*/true));
  if (env.IsNull()) return Status::Ok();
  for (const std::string& name : env.Keys()) {
    if (!ValidEnvName(name)) {
      return env.Error(name, "not an environment variable name (letters, digits and _, not starting with a digit)");
    }
    DISTRI_ASSIGN_OR_RETURN(std::string value, env.GetString(name));
    (*out)[name] = std::move(value);
  }
  return Status::Ok();
}

Result<ClusterConfig> Parse(const YamlDoc& doc) {
  ClusterConfig c;
  c.path = doc.name();
  const ConfigNode root = doc.root();
  DISTRI_RETURN_IF_ERROR(root.ExpectMap());
  DISTRI_RETURN_IF_ERROR(root.CheckKeys({"cluster_name", "state_dir", "keys_dir", "log_dir", "bin_dir", "model",
                                         "log_level", "head", "nodes", "env"}));
  DISTRI_ASSIGN_OR_RETURN(c.cluster_name, root.GetString("cluster_name"));
  if (c.cluster_name.empty() || c.cluster_name.find('/') != std::string::npos) {
    return root.Error("cluster_name", "expected a non-empty name without '/'");
  }
  DISTRI_ASSIGN_OR_RETURN(c.state_dir, root.GetString("state_dir", "~/.distri/" + c.cluster_name));
  c.state_dir = ExpandHome(c.state_dir);
  DISTRI_ASSIGN_OR_RETURN(c.keys_dir, root.GetString("keys_dir", c.state_dir + "/keys"));
  c.keys_dir = ExpandHome(c.keys_dir);
  DISTRI_ASSIGN_OR_RETURN(c.log_dir, root.GetString("log_dir", c.state_dir + "/logs"));
  c.log_dir = ExpandHome(c.log_dir);
  DISTRI_ASSIGN_OR_RETURN(c.bin_dir, root.GetString("bin_dir", ""));
  c.bin_dir = ExpandHome(c.bin_dir);
  DISTRI_ASSIGN_OR_RETURN(c.model, root.GetString("model", ""));
  c.model = ExpandHome(c.model);
  DISTRI_ASSIGN_OR_RETURN(c.log_level, root.GetEnum("log_level", {"debug", "info", "warning", "error"}, "info"));

  const ConfigNode head = root["head"];
  DISTRI_RETURN_IF_ERROR(head.ExpectMap(/*optional=*/true));
  DISTRI_RETURN_IF_ERROR(head.CheckKeys({"host", "bind", "port", "metrics_port", "db", "heartbeat_ms",
                                         "max_attempts", "placement"}));
  DISTRI_ASSIGN_OR_RETURN(c.head.host, head.GetString("host", "127.0.0.1"));
  DISTRI_ASSIGN_OR_RETURN(c.head.bind, head.GetString("bind", c.head.host));
  DISTRI_ASSIGN_OR_RETURN(int64_t port, head.GetInt("port", 1, 65535, 7070));
  c.head.port = static_cast<int>(port);
  DISTRI_ASSIGN_OR_RETURN(int64_t mport, head.GetInt("metrics_port", -1, 65535, -1));
  c.head.metrics_port = static_cast<int>(mport);
  DISTRI_ASSIGN_OR_RETURN(c.head.db, head.GetString("db", c.state_dir + "/head.db"));
  c.head.db = ExpandHome(c.head.db);
  DISTRI_ASSIGN_OR_RETURN(int64_t hb, head.GetInt("heartbeat_ms", 10, 3600000, 1000));
  c.head.heartbeat_ms = static_cast<int>(hb);
  DISTRI_ASSIGN_OR_RETURN(int64_t attempts, head.GetInt("max_attempts", 1, 100, 3));
  c.head.max_attempts = static_cast<int>(attempts);
  DISTRI_ASSIGN_OR_RETURN(c.head.placement, head.GetEnum("placement", {"pack", "spread"}, "pack"));

  std::map<std::string, std::string> cluster_env;
  DISTRI_RETURN_IF_ERROR(ParseEnv(root, &cluster_env));

  const ConfigNode nodes = root["nodes"];
  DISTRI_RETURN_IF_ERROR(nodes.ExpectSequence());
  if (nodes.size() == 0) return nodes.Error("expected at least one node");
  std::set<std::string> names;
  for (size_t i = 0; i < nodes.size(); ++i) {
    const ConfigNode n = nodes[i];
    DISTRI_RETURN_IF_ERROR(n.ExpectMap());
    DISTRI_RETURN_IF_ERROR(n.CheckKeys({"name", "host", "gpus", "cpu_actors", "max_restarts", "model", "ssh",
                                        "remote_bin_dir", "remote_keys_dir", "remote_log_dir", "copy_keys", "env"}));
    NodeConfig nc;
    DISTRI_ASSIGN_OR_RETURN(nc.name, n.GetString("name", "node" + std::to_string(i)));
    if (!names.insert(nc.name).second) return n.Error("name", "'" + nc.name + "' is used by another node");
    DISTRI_ASSIGN_OR_RETURN(nc.host, n.GetString("host", "localhost"));
    DISTRI_RETURN_IF_ERROR(ParseGpus(n, &nc.gpus));
    DISTRI_ASSIGN_OR_RETURN(int64_t cpu, n.GetInt("cpu_actors", 0, 4096, 0));
    nc.cpu_actors = static_cast<int>(cpu);
    DISTRI_ASSIGN_OR_RETURN(int64_t restarts, n.GetInt("max_restarts", 0, 1000, 3));
    nc.max_restarts = static_cast<int>(restarts);
    DISTRI_ASSIGN_OR_RETURN(nc.model, n.GetString("model", c.model));
    nc.model = ExpandHome(nc.model);
    if (nc.model.empty()) return n.Error("model", "no model folder (set it here or at the top level)");
    if (nc.gpus == "none" && nc.cpu_actors == 0) {
      return n.Error("cpu_actors", "the node runs no actor (gpus: none and cpu_actors: 0)");
    }
    DISTRI_ASSIGN_OR_RETURN(nc.ssh, n.GetString("ssh", nc.ssh));
    if (!nc.IsLocal() && nc.ssh.find("{host}") == std::string::npos) {
      return n.Error("ssh", "expected a command template containing {host}, found '" + nc.ssh + "'");
    }
    DISTRI_ASSIGN_OR_RETURN(nc.remote_bin_dir, n.GetString("remote_bin_dir", ""));
    DISTRI_ASSIGN_OR_RETURN(nc.remote_keys_dir, n.GetString("remote_keys_dir", c.keys_dir));
    DISTRI_ASSIGN_OR_RETURN(nc.remote_log_dir, n.GetString("remote_log_dir", "/tmp"));
    DISTRI_ASSIGN_OR_RETURN(nc.copy_keys, n.GetString("copy_keys", ""));
    std::map<std::string, std::string> env = cluster_env;
    DISTRI_RETURN_IF_ERROR(ParseEnv(n, &env));
    nc.env.assign(env.begin(), env.end());
    c.nodes.push_back(std::move(nc));
  }
  return c;
}

}  // namespace

std::string ExpandHome(const std::string& path) {
  if (path.empty() || path[0] != '~') return path;
  const char* home = std::getenv("HOME");
  return std::string(home ? home : "") + path.substr(1);
}

Result<ClusterConfig> LoadClusterConfig(const std::string& path) {
  DISTRI_ASSIGN_OR_RETURN(YamlDoc doc, YamlDoc::LoadFile(path));
  return Parse(doc);
}

Result<ClusterConfig> ParseClusterConfig(std::string_view text, const std::string& name) {
  DISTRI_ASSIGN_OR_RETURN(YamlDoc doc, YamlDoc::LoadString(text, name));
  return Parse(doc);
}

}  // namespace distri::cli
