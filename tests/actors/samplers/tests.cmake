# actors/samplers: unit tests (configs, errors, invariants) and parity against diffusers'
# DDIM / Euler / DPM-Solver++(2M) schedulers (fixture: tests/parity/ref_samplers.py).
distri_add_gtest(NAME samplers_test LABELS unit
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/scheduler_config_test.cc ${CMAKE_CURRENT_LIST_DIR}/sampler_test.cc
  LIBS distri::actors)
distri_use_torch_pch(samplers_test)

distri_add_parity_fixture(AREA samplers SCRIPT ${PROJECT_SOURCE_DIR}/tests/parity/ref_samplers.py)
distri_add_gtest(NAME samplers_parity_test LABELS parity NO_DISCOVER
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/sampler_parity_test.cc
  LIBS distri::actors)
distri_use_torch_pch(samplers_parity_test)
distri_require_parity_fixture(samplers_parity_test samplers)
