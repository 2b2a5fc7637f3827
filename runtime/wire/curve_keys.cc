#include "runtime/wire/curve_keys.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <sstream>

#include "runtime/wire/zmq_context.h"

namespace distri::wire {
namespace {

// Keys files are small; anything larger is not one of ours.
constexpr size_t kMaxKeyFileBytes = 1 << 20;

std::string Trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t' || s[b] == '\r')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t' || s[e - 1] == '\r')) --e;
  return std::string(s.substr(b, e - b));
}

// Writes `text` to `path` with mode 0600: into a temporary file created 0600 (never readable
// by others, even briefly), fsync'd, then renamed over `path`.
Status WritePrivateFile(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp." + std::to_string(getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Status::IoError(path + ": cannot create: " + std::strerror(errno));
  // The umask cannot widen 0600, but an existing file's mode is kept by O_TRUNC.
  if (::fchmod(fd, 0600) != 0) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    return Status::IoError(path + ": chmod 0600: " + std::strerror(err));
  }
  size_t off = 0;
  while (off < text.size()) {
    const ssize_t n = ::write(fd, text.data() + off, text.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return Status::IoError(path + ": write: " + std::strerror(err));
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(tmp.c_str());
    return Status::IoError(path + ": fsync/close: " + std::strerror(errno));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return Status::IoError(path + ": rename: " + std::strerror(err));
  }
  return Status::Ok();
}

// Reads a whole key file. With `secret`, refuses files that group or others can access.
Result<std::string> ReadKeyFile(const std::string& path, bool secret) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) return Status::NotFound(path + ": no such key file");
    return Status::IoError(path + ": cannot open: " + std::strerror(err));
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return Status::IoError(path + ": stat: " + std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return Status::InvalidArgument(path + ": not a regular file");
  }
  if (secret && (st.st_mode & 077) != 0) {
    ::close(fd);
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return Status::PermissionDenied(path + ": holds a secret key but has mode " + mode +
                                    "; it must not be accessible by group or others (chmod 600 " + path + ")");
  }
  if (static_cast<size_t>(st.st_size) > kMaxKeyFileBytes) {
    ::close(fd);
    return Status::InvalidArgument(path + ": " + std::to_string(st.st_size) + " bytes, too large for a key file");
  }
  std::string text(static_cast<size_t>(st.st_size), '\0');
  size_t off = 0;
  while (off < text.size()) {
    const ssize_t n = ::read(fd, text.data() + off, text.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      return Status::IoError(path + ": read: " + std::strerror(err));
    }
    if (n == 0) break;
    off += static_cast<size_t>(n);
  }
  text.resize(off);
  ::close(fd);
  return text;
}

struct KeyFileEntries {
  std::string public_key;
  std::string secret_key;
};

// Parses "name = value" lines of a key pair / public key file.
Result<KeyFileEntries> ParseKeyFile(const std::string& path, const std::string& text) {
  KeyFileEntries out;
  std::istringstream in(text);
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    const std::string t = Trim(line);
    if (t.empty() || t[0] == '#') continue;
    const std::string where = path + ":" + std::to_string(lineno);
    const size_t eq = t.find('=');
    if (eq == std::string::npos) return Status::ParseError(where + ": expected 'name = value', found '" + t + "'");
    const std::string name = Trim(std::string_view(t).substr(0, eq));
    const std::string value = Trim(std::string_view(t).substr(eq + 1));
    std::string* slot = name == "public-key" ? &out.public_key : name == "secret-key" ? &out.secret_key : nullptr;
    if (slot == nullptr) {
      return Status::ParseError(where + ": unknown entry '" + name + "' (expected public-key or secret-key)");
    }
    if (!slot->empty()) return Status::ParseError(where + ": duplicate entry '" + name + "'");
    DISTRI_RETURN_IF_ERROR(ValidateZ85Key(value, name).WithContext(where));
    *slot = value;
  }
  return out;
}

}  // namespace

Result<CurveKeyPair> GenerateCurveKeyPair() {
  DISTRI_RETURN_IF_ERROR(CheckCurveSupport());
  char pub[kZ85KeyChars + 1];
  char sec[kZ85KeyChars + 1];
  if (zmq_curve_keypair(pub, sec) != 0) {
    return Status::Internal(std::string("zmq_curve_keypair: ") + zmq_strerror(errno));
  }
  return CurveKeyPair{std::string(pub, kZ85KeyChars), std::string(sec, kZ85KeyChars)};
}

Status ValidateZ85Key(std::string_view key, std::string_view what) {
  if (key.size() != kZ85KeyChars) {
    return Status::InvalidArgument(std::string(what) + ": expected a " + std::to_string(kZ85KeyChars) +
                                   "-character Z85 key, found " + std::to_string(key.size()) + " characters");
  }
  const std::string z(key);
  std::array<uint8_t, 32> raw;
  if (zmq_z85_decode(raw.data(), z.c_str()) == nullptr) {
    return Status::InvalidArgument(std::string(what) + ": not valid Z85 text");
  }
  return Status::Ok();
}

Result<std::string> DerivePublicKey(std::string_view secret_key) {
  DISTRI_RETURN_IF_ERROR(CheckCurveSupport());
  DISTRI_RETURN_IF_ERROR(ValidateZ85Key(secret_key, "secret key"));
  const std::string sec(secret_key);
  char pub[kZ85KeyChars + 1];
  if (zmq_curve_public(pub, sec.c_str()) != 0) {
    return Status::Internal(std::string("zmq_curve_public: ") + zmq_strerror(errno));
  }
  return std::string(pub, kZ85KeyChars);
}

Status WriteKeyPairFile(const std::string& path, const CurveKeyPair& keys) {
  DISTRI_RETURN_IF_ERROR(ValidateZ85Key(keys.public_key, "public key"));
  DISTRI_RETURN_IF_ERROR(ValidateZ85Key(keys.secret_key, "secret key"));
  return WritePrivateFile(path,
                          "# distri CURVE key pair (ZeroMQ Z85). Secret: keep this file private (mode 0600).\n"
                          "public-key = " + keys.public_key + "\nsecret-key = " + keys.secret_key + "\n");
}

Result<CurveKeyPair> ReadKeyPairFile(const std::string& path) {
  DISTRI_ASSIGN_OR_RETURN(std::string text, ReadKeyFile(path, /*secret=*/true));
  DISTRI_ASSIGN_OR_RETURN(KeyFileEntries e, ParseKeyFile(path, text));
  if (e.secret_key.empty()) return Status::ParseError(path + ": no secret-key entry (is this a public key file?)");
  DISTRI_ASSIGN_OR_RETURN(std::string derived, DerivePublicKey(e.secret_key));
  if (e.public_key.empty()) {
    e.public_key = derived;
  } else if (e.public_key != derived) {
    return Status::InvalidArgument(path + ": public-key does not belong to secret-key");
  }
  return CurveKeyPair{e.public_key, e.secret_key};
}

Status WritePublicKeyFile(const std::string& path, std::string_view public_key) {
  DISTRI_RETURN_IF_ERROR(ValidateZ85Key(public_key, "public key"));
  return WritePrivateFile(path, "# distri CURVE public key (ZeroMQ Z85)\npublic-key = " + std::string(public_key) + "\n");
}

Result<std::string> ReadPublicKeyFile(const std::string& path) {
  DISTRI_ASSIGN_OR_RETURN(std::string text, ReadKeyFile(path, /*secret=*/false));
  DISTRI_ASSIGN_OR_RETURN(KeyFileEntries e, ParseKeyFile(path, text));
  if (e.public_key.empty()) return Status::ParseError(path + ": no public-key entry");
  return e.public_key;
}

Status WriteAuthorizedKeysFile(const std::string& path, const std::vector<AuthorizedKey>& keys) {
  std::string text = "# distri authorized CURVE public keys (ZeroMQ Z85): <key> [comment]\n";
  for (const AuthorizedKey& k : keys) {
    DISTRI_RETURN_IF_ERROR(ValidateZ85Key(k.public_key, "authorized key"));
    if (k.comment.find('\n') != std::string::npos)
      return Status::InvalidArgument("authorized key comment contains a newline");
    text += k.public_key;
    if (!k.comment.empty()) text += " " + k.comment;
    text += "\n";
  }
  return WritePrivateFile(path, text);
}

Result<std::vector<AuthorizedKey>> ReadAuthorizedKeysFile(const std::string& path) {
  DISTRI_ASSIGN_OR_RETURN(std::string text, ReadKeyFile(path, /*secret=*/false));
  std::vector<AuthorizedKey> out;
  std::istringstream in(text);
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    const std::string t = Trim(line);
    if (t.empty() || t[0] == '#') continue;
    const size_t sp = t.find_first_of(" \t");
    AuthorizedKey k;
    k.public_key = t.substr(0, sp);
    if (sp != std::string::npos) k.comment = Trim(std::string_view(t).substr(sp));
    DISTRI_RETURN_IF_ERROR(ValidateZ85Key(k.public_key, "key").WithContext(path + ":" + std::to_string(lineno)));
    out.push_back(std::move(k));
  }
  return out;
}

}  // namespace distri::wire
