# Tests of the C ABI (capi/). Included by tests/CMakeLists.txt.
#   capi_header_c99 / capi_header_cxx   distri.h compiles as C99 and C++11 with -Werror
#   capi_exported_symbols               libdistri exports exactly capi/exported_symbols.txt
#   capi_api_test / capi_api_test_asan  every entry point, good and bad arguments ("fake://")
#   capi_preview_test / _asan           latent previews, version 1 job params ("fake://")
#   capi_e2e_embedded                   renders through the embedded cluster = `distri generate`
if(NOT TARGET distri_capi)
  return()
endif()
set(_capi_dir ${CMAKE_CURRENT_SOURCE_DIR}/capi)

add_test(NAME capi_header_c99
         COMMAND ${CMAKE_C_COMPILER} -std=c99 -Wall -Wextra -Werror -pedantic -fsyntax-only
                 -I${PROJECT_SOURCE_DIR}/capi/include ${_capi_dir}/header_c99.c)
add_test(NAME capi_header_cxx
         COMMAND ${CMAKE_CXX_COMPILER} -x c++ -std=c++11 -Wall -Wextra -Werror -pedantic -fsyntax-only
                 -I${PROJECT_SOURCE_DIR}/capi/include ${_capi_dir}/header_c99.c)
set_tests_properties(capi_header_c99 capi_header_cxx PROPERTIES LABELS unit)

add_test(NAME capi_exported_symbols
         COMMAND ${CMAKE_COMMAND} -DNM=${CMAKE_NM} -DOBJDUMP=${CMAKE_OBJDUMP}
                 -DLIB=$<TARGET_FILE:distri_capi> -DSONAME=$<TARGET_SONAME_FILE_NAME:distri_capi>
                 -DHEADER=${PROJECT_SOURCE_DIR}/capi/include/distri/distri.h
                 -DLIST=${PROJECT_SOURCE_DIR}/capi/exported_symbols.txt
                 -P ${_capi_dir}/check_exported_symbols.cmake)
set_tests_properties(capi_exported_symbols PROPERTIES LABELS unit)

# The API tests are C99 and see only the installed header and the shared library.
foreach(_t capi_api_test capi_preview_test)
  add_executable(${_t} ${_capi_dir}/${_t}.c)
  set_target_properties(${_t} PROPERTIES C_STANDARD 99 C_STANDARD_REQUIRED ON C_EXTENSIONS OFF)
  target_compile_options(${_t} PRIVATE -Wall -Wextra -Werror)
  target_link_libraries(${_t} PRIVATE distri_capi Threads::Threads m)
  add_test(NAME ${_t} COMMAND ${_t})
  set_tests_properties(${_t} PROPERTIES LABELS unit TIMEOUT 120)

  if(TARGET distri_capi_asan)
    add_executable(${_t}_asan ${_capi_dir}/${_t}.c)
    set_target_properties(${_t}_asan PROPERTIES C_STANDARD 99 C_STANDARD_REQUIRED ON C_EXTENSIONS OFF)
    target_compile_options(${_t}_asan PRIVATE -Wall -Wextra -Werror -fsanitize=address -fno-omit-frame-pointer)
    target_link_options(${_t}_asan PRIVATE -fsanitize=address)
    target_link_libraries(${_t}_asan PRIVATE distri_capi_asan Threads::Threads m)
    add_test(NAME ${_t}_asan COMMAND ${_t}_asan)
    set_tests_properties(${_t}_asan PROPERTIES LABELS unit TIMEOUT 180
                         ENVIRONMENT "ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1")
  endif()
endforeach()

# --- End to end (definitions shared with tests/bindings/* and tests/examples, which may be
# included before this file).
include(${_capi_dir}/e2e.cmake)
