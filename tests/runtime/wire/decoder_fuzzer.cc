// libFuzzer target for the control-plane decoder: every byte string a network peer could
// send goes through DecodeEnvelope + DecodeMessage; whatever decodes must re-encode and
// decode to the same message. Built only with clang (see tests.cmake). To run it:
//
//   apt-get install -y clang-14 libclang-rt-14-dev
//   CC=clang-14 CXX=clang++-14 cmake -S . -B build-fuzz -G Ninja -DDISTRI_WITH_TORCH=OFF -DDISTRI_WITH_CUDA=OFF
//   cmake --build build-fuzz --target wire_decoder_fuzzer
//   build-fuzz/tests/wire_decoder_fuzzer -max_len=4096 -max_total_time=60 build-fuzz/wire_corpus
//
// The seed corpus is one envelope of every message type (written on the first run).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "runtime/wire/messages.h"
#include "tests/runtime/wire/sample_messages.h"

namespace {

// Writes the seed corpus into the first corpus directory given on the command line.
void WriteSeeds(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (argv[i][0] == '-') continue;
    std::filesystem::path dir(argv[i]);
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec)) continue;
    int n = 0;
    for (const std::string& s : distri::wire::testing::SampleEnvelopes()) {
      std::ofstream(dir / ("seed_" + std::to_string(n++)), std::ios::binary) << s;
    }
    return;
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  WriteSeeds(*argc, *argv);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace distri::wire;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  distri::Result<AnyMessage> m = DecodeMessage(bytes);
  if (!m.ok()) {
    if (m.status().message().empty()) std::abort();  // every rejection must say why
    return 0;
  }
  std::visit(
      [](const auto& msg) {
        using M = std::decay_t<decltype(msg)>;
        distri::Result<std::string> again = Seal(msg, 1, "fuzz");
        if (!again.ok()) {
          std::fprintf(stderr, "decoded %s does not re-encode: %s\n", std::string(MessageTypeName(M::kType)).c_str(),
                       again.status().ToString().c_str());
          std::abort();
        }
        distri::Result<AnyMessage> back = DecodeMessage(std::string_view(*again));
        if (!back.ok() || !(std::get<M>(*back) == msg)) std::abort();
      },
      *m);
  return 0;
}
