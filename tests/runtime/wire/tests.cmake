# tests/runtime/wire: the control-plane protocol and transport (runtime/wire).
# Included from tests/CMakeLists.txt (functions and GTest come from there).
distri_add_gtest(NAME wire_test LABELS unit
  SOURCES runtime/wire/messages_test.cc runtime/wire/envelope_test.cc
          runtime/wire/decode_errors_test.cc runtime/wire/decoder_robustness_test.cc
          runtime/wire/curve_keys_test.cc runtime/wire/transport_test.cc
          runtime/wire/field_versions_test.cc
  LIBS distri::wire msgpack-cxx distri::zmq)

# libFuzzer target for the decoder: clang only (CI builds with gcc and relies on the
# deterministic WireDecoderRobustness tests instead). It compiles the codec sources itself so
# that they carry the fuzzer's coverage instrumentation. See decoder_fuzzer.cc to run it.
if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  include(CheckCXXSourceCompiles)
  set(CMAKE_REQUIRED_FLAGS "-fsanitize=fuzzer")
  check_cxx_source_compiles(
    "#include <cstddef>\n#include <cstdint>\nextern \"C\" int LLVMFuzzerTestOneInput(const uint8_t*, size_t) { return 0; }"
    DISTRI_HAVE_LIBFUZZER)
  unset(CMAKE_REQUIRED_FLAGS)
  if(DISTRI_HAVE_LIBFUZZER)
    get_property(_wire_codec_sources GLOBAL PROPERTY DISTRI_WIRE_CODEC_SOURCES)
    add_executable(wire_decoder_fuzzer runtime/wire/decoder_fuzzer.cc ${_wire_codec_sources})
    target_include_directories(wire_decoder_fuzzer PRIVATE ${PROJECT_SOURCE_DIR})
    target_compile_definitions(wire_decoder_fuzzer PRIVATE MSGPACK_NO_BOOST=1)
    target_compile_options(wire_decoder_fuzzer PRIVATE -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -g -O1)
    target_link_options(wire_decoder_fuzzer PRIVATE -fsanitize=fuzzer,address,undefined)
    target_link_libraries(wire_decoder_fuzzer PRIVATE distri::common msgpack-cxx)
    # A short bounded run in ctest, from the seed corpus, so the target cannot rot.
    set(_corpus ${CMAKE_CURRENT_BINARY_DIR}/wire_fuzz_corpus)
    file(MAKE_DIRECTORY ${_corpus})
    add_test(NAME wire_decoder_fuzz_smoke
             COMMAND wire_decoder_fuzzer -runs=20000 -max_len=4096 -seed=1 ${_corpus})
    set_tests_properties(wire_decoder_fuzz_smoke PROPERTIES LABELS unit TIMEOUT 300)
  endif()
endif()
