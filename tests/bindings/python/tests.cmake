# Python bindings (bindings/python): pytest against the built libdistri.
#   bindings_python_api        the API and bad arguments, on the "fake://" cluster
#   bindings_python_api_asan   the same with libdistri built with AddressSanitizer
#   bindings_python_e2e        renders through the embedded cluster = `distri generate`
if(NOT TARGET distri_capi OR NOT DISTRI_BUILD_BINDINGS)
  return()
endif()
include(${CMAKE_CURRENT_LIST_DIR}/../../capi/e2e.cmake)
set(_py_dir ${PROJECT_SOURCE_DIR}/bindings/python)
add_test(NAME bindings_python_api
         COMMAND ${Python3_EXECUTABLE} -m pytest -q -p no:cacheprovider ${_py_dir}/tests/test_api.py)
set_tests_properties(bindings_python_api PROPERTIES LABELS unit TIMEOUT 300
                     ENVIRONMENT "DISTRI_LIBRARY=$<TARGET_FILE:distri_capi>")

if(TARGET distri_capi_asan)
  # The interpreter is not instrumented: libasan is preloaded, leaks are not checked (CPython
  # keeps objects alive at exit on purpose).
  execute_process(COMMAND ${CMAKE_C_COMPILER} -print-file-name=libasan.so
                  OUTPUT_VARIABLE _libasan OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(EXISTS "${_libasan}")
    add_test(NAME bindings_python_api_asan
             COMMAND ${Python3_EXECUTABLE} -m pytest -q -p no:cacheprovider ${_py_dir}/tests/test_api.py)
    set_tests_properties(bindings_python_api_asan PROPERTIES LABELS unit TIMEOUT 300
                         ENVIRONMENT "DISTRI_LIBRARY=$<TARGET_FILE:distri_capi_asan>;LD_PRELOAD=${_libasan};ASAN_OPTIONS=detect_leaks=0")
  endif()
endif()

if(DISTRI_E2E_READY)
  add_test(NAME bindings_python_e2e
           COMMAND ${Python3_EXECUTABLE} -m pytest -q -p no:cacheprovider ${_py_dir}/tests/test_e2e.py)
  set_tests_properties(bindings_python_e2e PROPERTIES LABELS integration FIXTURES_REQUIRED capi_e2e TIMEOUT 600
                       ENVIRONMENT "DISTRI_LIBRARY=$<TARGET_FILE:distri_capi>;${DISTRI_E2E_ENV}")
endif()
