# Fixture capi_e2e_reference: the tiny model and the image `distri generate` renders for the
# end-to-end tests of the C ABI and every binding (they must produce the same bytes).
#   cmake -DDISTRI=... -DPNG_TO_RGB=... -DOUT=dir -P make_reference.cmake
# The job (same in every test): see tests/capi/e2e_params.txt.
file(STRINGS ${CMAKE_CURRENT_LIST_DIR}/e2e_params.txt _params REGEX "^[a-z_]+=")
foreach(_p ${_params})
  string(REGEX MATCH "^([a-z_]+)=(.*)$" _m "${_p}")
  set(E2E_${CMAKE_MATCH_1} "${CMAKE_MATCH_2}")
endforeach()
file(MAKE_DIRECTORY ${OUT})
if(NOT EXISTS ${OUT}/model/model_index.json)
  execute_process(COMMAND ${DISTRI} model init --arch sdxl-tiny ${OUT}/model RESULT_VARIABLE _rc)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "distri model init failed (${_rc})")
  endif()
endif()
execute_process(COMMAND ${DISTRI} generate --model ${OUT}/model --prompt "${E2E_prompt}"
                        --negative-prompt "${E2E_negative_prompt}" --width ${E2E_width} --height ${E2E_height}
                        --steps ${E2E_steps} --guidance ${E2E_guidance} --seed ${E2E_seed}
                        --sampler ${E2E_sampler} --device cpu --dtype fp32 --quiet --out ${OUT}/reference.png
                RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "distri generate failed (${_rc})")
endif()
execute_process(COMMAND ${PNG_TO_RGB} ${OUT}/reference.png ${OUT}/reference.rgb RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "capi_png_to_rgb failed (${_rc})")
endif()
