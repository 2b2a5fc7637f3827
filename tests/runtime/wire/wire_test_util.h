// Helpers of the wire tests that take messages apart: hand-written msgpack, and the check of a
// refusal's Status.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "runtime/wire/msgpack_io.h"

namespace distri::wire::testing {

using Packer = msgpack::packer<internal::StringSink>;

// What `f` packs.
inline std::string Pack(const std::function<void(Packer&)>& f) {
  std::string out;
  internal::StringSink sink{&out};
  Packer pk(sink);
  f(pk);
  return out;
}

}  // namespace distri::wire::testing

// Expects `status_expr` to have StatusCode::code_ and a message that contains `text`.
#define EXPECT_ERROR(status_expr, code_, text)                                            \
  do {                                                                                    \
    const Status _s = (status_expr);                                                      \
    EXPECT_EQ(_s.code(), StatusCode::code_) << _s.ToString();                              \
    EXPECT_NE(_s.message().find(text), std::string::npos) << "message: " << _s.message(); \
  } while (0)
