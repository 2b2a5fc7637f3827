// CURVE key pairs and the key files of a cluster.
//
// Keys are Curve25519 keys in ZeroMQ's Z85 text form: 40 characters for 32 bytes.
// `distri-cluster up` creates, in the cluster's key directory:
//
//   head.key         the head's key pair            (WriteKeyPairFile, mode 0600)
//   head.pub         the head's public key          (WritePublicKeyFile, mode 0600)
//   client.key, node.key, ...   key pairs of clients and node agents
//   authorized_keys  public keys the head accepts   (WriteAuthorizedKeysFile, mode 0600)
//
// Formats (UTF-8 text, '#' starts a comment line, blank lines ignored):
//
//   key pair file:        public-key = <z85>     public key file:   public-key = <z85>
//                         secret-key = <z85>
//   authorized_keys:      <z85> [free text naming the key holder]      (one key per line)
//
// Files are written with mode 0600 and replaced atomically (write + rename). Reading a key
// pair file that group or others can access fails with PermissionDenied, as ssh does. Every
// error names the file and line.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "runtime/common/status.h"

namespace distri::wire {

inline constexpr size_t kZ85KeyChars = 40;

struct CurveKeyPair {
  std::string public_key;  // Z85, 40 characters
  std::string secret_key;  // Z85, 40 characters; never log it
};

// A fresh key pair from libsodium's random generator. FailedPrecondition without CURVE support.
Result<CurveKeyPair> GenerateCurveKeyPair();

// OK when `key` is 40 characters of valid Z85; `what` names the key in the error.
Status ValidateZ85Key(std::string_view key, std::string_view what);

// The public key that belongs to `secret_key` (both Z85).
Result<std::string> DerivePublicKey(std::string_view secret_key);

Status WriteKeyPairFile(const std::string& path, const CurveKeyPair& keys);
// Also checks that the secret and public keys belong together.
Result<CurveKeyPair> ReadKeyPairFile(const std::string& path);

Status WritePublicKeyFile(const std::string& path, std::string_view public_key);
// Accepts a public key file or a key pair file (then returns its public key).
Result<std::string> ReadPublicKeyFile(const std::string& path);

struct AuthorizedKey {
  std::string public_key;  // Z85
  std::string comment;     // the rest of the line ("node gpu-03"), may be empty
};
Status WriteAuthorizedKeysFile(const std::string& path, const std::vector<AuthorizedKey>& keys);
Result<std::vector<AuthorizedKey>> ReadAuthorizedKeysFile(const std::string& path);

}  // namespace distri::wire
