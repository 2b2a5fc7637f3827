# AutoencoderKL (actors/model/vae).
#   vae_test          unit: config reading and refusals, state-dict names, loader errors, the
#                     Decode precision policy (fp16 -> fp32 upcast), latent scaling, sampling
#   vae_parity_test   parity: encode/decode vs diffusers 0.42.1 on tiny random VAEs (ref_vae.py)
distri_add_gtest(NAME vae_test LABELS unit
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/vae_test.cc LIBS distri::actors)
distri_use_torch_pch(vae_test)

distri_add_parity_fixture(AREA vae SCRIPT ${PROJECT_SOURCE_DIR}/tests/parity/ref_vae.py)
distri_add_gtest(NAME vae_parity_test LABELS parity NO_DISCOVER
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/vae_parity_test.cc LIBS distri::actors)
distri_use_torch_pch(vae_parity_test)
distri_require_parity_fixture(vae_parity_test vae)
