# actors/model CLIP: tokenizer and text encoders.
#   clip_test           unit: tokenizer (tiny vocabulary, errors, Unicode), text model (names,
#                       shapes, pooling, causality, loader errors)
#   clip_parity_test    parity: ids and outputs vs transformers (fixture: tests/parity/ref_clip.py)
#   clip_tiny_tokenizer_vs_transformers
#                       parity: transformers' CLIPTokenizer loads WriteTinyClipTokenizer's files
#                       and encodes like distri (C++ writes them, check_tiny_tokenizer.py checks)
distri_add_gtest(NAME clip_test LABELS unit
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/clip_tokenizer_test.cc ${CMAKE_CURRENT_LIST_DIR}/clip_text_model_test.cc
  LIBS distri::actors nlohmann_json::nlohmann_json)
distri_use_torch_pch(clip_test)

distri_add_parity_fixture(AREA clip SCRIPT ${PROJECT_SOURCE_DIR}/tests/parity/ref_clip.py)
distri_add_gtest(NAME clip_parity_test LABELS parity NO_DISCOVER
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/clip_parity_test.cc
  LIBS distri::actors nlohmann_json::nlohmann_json)
distri_use_torch_pch(clip_parity_test)
distri_require_parity_fixture(clip_parity_test clip)

set(_clip_tiny_dir ${DISTRI_PARITY_DIR}/clip_tiny_tokenizer)
add_test(NAME clip_tiny_tokenizer_write
         COMMAND ${CMAKE_COMMAND} -E env DISTRI_CLIP_TINY_DIR=${_clip_tiny_dir}
                 $<TARGET_FILE:clip_test> --gtest_filter=ClipTinyTokenizer.WritesFilesForTransformers)
set_tests_properties(clip_tiny_tokenizer_write PROPERTIES LABELS parity FIXTURES_SETUP clip_tiny_tokenizer)
add_test(NAME clip_tiny_tokenizer_vs_transformers
         COMMAND ${CMAKE_COMMAND} -E env HF_HUB_OFFLINE=1
                 ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/check_tiny_tokenizer.py ${_clip_tiny_dir})
set_tests_properties(clip_tiny_tokenizer_vs_transformers PROPERTIES LABELS parity
                     FIXTURES_REQUIRED clip_tiny_tokenizer TIMEOUT 120)
