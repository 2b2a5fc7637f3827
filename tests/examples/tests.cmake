# examples/: the render and batch programs in C, Python, Rust and Go.
#   example_<lang>_<prog>_fake   each program against the library's "fake://" cluster (unit)
#   example_<lang>_render_e2e    the embedded CPU cluster on the tiny model; the image must equal
#                                `distri generate`'s (integration, needs a LibTorch build)
#   example_<lang>_batch_e2e     the batch program on the embedded CPU cluster (integration)
if(NOT TARGET distri_capi)
  return()
endif()
include(${CMAKE_CURRENT_LIST_DIR}/../capi/e2e.cmake)
set(_ex ${PROJECT_SOURCE_DIR}/examples)
set(_out ${CMAKE_BINARY_DIR}/examples-out)
file(MAKE_DIRECTORY ${_out})

foreach(_prog render batch)
  add_executable(example_c_${_prog} ${_ex}/c/${_prog}.c)
  target_compile_options(example_c_${_prog} PRIVATE -Wall -Wextra -Werror)
  target_link_libraries(example_c_${_prog} PRIVATE distri_capi)
endforeach()

# The command that runs example <prog> of <lang>, in _cmd; _env gets its environment.
set(_lib_dir $<TARGET_FILE_DIR:distri_capi>)
find_program(DISTRI_CARGO cargo HINTS $ENV{HOME}/.cargo/bin)
find_program(DISTRI_GO go HINTS /usr/lib/go/bin /usr/local/go/bin)
set(_langs c)
if(DISTRI_BUILD_BINDINGS)
  list(APPEND _langs python)
endif()
if(DISTRI_BUILD_BINDINGS AND DISTRI_CARGO)
  list(APPEND _langs rust)
endif()
if(DISTRI_BUILD_BINDINGS AND DISTRI_GO)
  list(APPEND _langs go)
endif()
macro(_example_command lang prog)
  set(_env "")
  if("${lang}" STREQUAL "c")
    set(_cmd $<TARGET_FILE:example_c_${prog}>)
  elseif("${lang}" STREQUAL "python")
    set(_cmd ${Python3_EXECUTABLE} ${_ex}/python/${prog}.py)
    set(_env "DISTRI_LIBRARY=$<TARGET_FILE:distri_capi>" "PYTHONPATH=${PROJECT_SOURCE_DIR}/bindings/python")
  elseif("${lang}" STREQUAL "rust")
    set(_cmd ${DISTRI_CARGO} run --offline --locked --quiet --manifest-path ${_ex}/rust/Cargo.toml --bin ${prog} --)
    set(_env "CARGO_TARGET_DIR=${CMAKE_BINARY_DIR}/cargo-examples" "DISTRI_LIB_DIR=${_lib_dir}"
             "LD_LIBRARY_PATH=${_lib_dir}" "CARGO_NET_OFFLINE=true")
  else()
    # `go run` from the examples' module folder (it replaces `distri` with bindings/go).
    set(_cmd ${CMAKE_COMMAND} -E chdir ${_ex}/go ${DISTRI_GO} run ./${prog})
    set(_env "GOCACHE=${CMAKE_BINARY_DIR}/go-cache" "GOPATH=${CMAKE_BINARY_DIR}/go-path" "GOPROXY=off"
             "GOFLAGS=-mod=mod" "CGO_LDFLAGS=-L${_lib_dir} -Wl,-rpath,${_lib_dir}")
  endif()
endmacro()

foreach(_lang ${_langs})
  _example_command(${_lang} render)
  add_test(NAME example_${_lang}_render_fake
           COMMAND ${_cmd} --address fake:// --size 64 --steps 3 --out ${_out}/${_lang}-render-fake.png "a lighthouse")
  set_tests_properties(example_${_lang}_render_fake PROPERTIES LABELS unit TIMEOUT 300 ENVIRONMENT "${_env}")
  _example_command(${_lang} batch)
  add_test(NAME example_${_lang}_batch_fake
           COMMAND ${_cmd} --address fake:// --size 64 --steps 3 --out-dir ${_out}/${_lang}-batch-fake "a cat" "a dog")
  set_tests_properties(example_${_lang}_batch_fake PROPERTIES LABELS unit TIMEOUT 300 ENVIRONMENT "${_env}")

  if(DISTRI_E2E_READY)
    _example_command(${_lang} render)
    add_test(NAME example_${_lang}_render_e2e
             COMMAND ${CMAKE_CURRENT_LIST_DIR}/check_render.sh $<TARGET_FILE:capi_png_to_rgb>
                     ${_out}/${_lang}-render-e2e.png ${DISTRI_E2E_DIR}/reference.rgb --
                     ${_cmd} --model ${DISTRI_E2E_DIR}/model --cpu --size 128 --steps 4 --seed 42
                     --sampler euler --negative blurry --out ${_out}/${_lang}-render-e2e.png "a lighthouse at dawn")
    set_tests_properties(example_${_lang}_render_e2e PROPERTIES LABELS integration FIXTURES_REQUIRED capi_e2e
                         TIMEOUT 600 ENVIRONMENT "${_env};${DISTRI_E2E_ENV}")
    _example_command(${_lang} batch)
    add_test(NAME example_${_lang}_batch_e2e
             COMMAND ${_cmd} --model ${DISTRI_E2E_DIR}/model --cpu --size 64 --steps 2
                     --out-dir ${_out}/${_lang}-batch-e2e "a cat" "a dog")
    set_tests_properties(example_${_lang}_batch_e2e PROPERTIES LABELS integration FIXTURES_REQUIRED capi_e2e
                         TIMEOUT 600 ENVIRONMENT "${_env};${DISTRI_E2E_ENV}")
  endif()
endforeach()
