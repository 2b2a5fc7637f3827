# ccache when present. The sloppiness settings let ccache cache translation units that use
# precompiled headers (the LibTorch targets), which it refuses by default. CCACHE_BASEDIR makes
# the cached paths relative to the checkout, so a fresh clone in another folder (as CI makes)
# still hits the cache.
if(DISTRI_USE_CCACHE)
  find_program(DISTRI_CCACHE ccache)
  if(DISTRI_CCACHE)
    set(_launcher ${CMAKE_COMMAND} -E env
        "CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime"
        "CCACHE_BASEDIR=${CMAKE_SOURCE_DIR}" "CCACHE_NOHASHDIR=1"
        ${DISTRI_CCACHE})
    set(CMAKE_C_COMPILER_LAUNCHER ${_launcher})
    set(CMAKE_CXX_COMPILER_LAUNCHER ${_launcher})
    set(CMAKE_CUDA_COMPILER_LAUNCHER ${CMAKE_COMMAND} -E env "CCACHE_BASEDIR=${CMAKE_SOURCE_DIR}"
        "CCACHE_NOHASHDIR=1" ${DISTRI_CCACHE})
    message(STATUS "distri: using ccache at ${DISTRI_CCACHE}")
  endif()
endif()
