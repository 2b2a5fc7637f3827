# Finds every third-party dependency once, and sets DISTRI_HAVE_<X>.
find_package(Threads REQUIRED)
find_package(yaml-cpp REQUIRED)
# yaml-cpp 0.7 (Debian 12) exports `yaml-cpp`, 0.8 (Ubuntu 24.04) `yaml-cpp::yaml-cpp`.
add_library(distri::yaml INTERFACE IMPORTED)
if(TARGET yaml-cpp::yaml-cpp)
  target_link_libraries(distri::yaml INTERFACE yaml-cpp::yaml-cpp)
else()
  target_link_libraries(distri::yaml INTERFACE yaml-cpp)
endif()
# ZeroMQ and UCX are found by header + library (no pkg-config needed: the GPU machine has
# none, and its packages are unpacked under a prefix listed in CMAKE_PREFIX_PATH).
find_path(ZMQ_INCLUDE_DIR zmq.h REQUIRED)
find_library(ZMQ_LIBRARY zmq REQUIRED)
add_library(distri::zmq INTERFACE IMPORTED)
target_include_directories(distri::zmq INTERFACE ${ZMQ_INCLUDE_DIR})
target_link_libraries(distri::zmq INTERFACE ${ZMQ_LIBRARY})
find_package(msgpack-cxx CONFIG QUIET)
if(NOT msgpack-cxx_FOUND)
  # Debian's libmsgpack-cxx-dev is header-only; fall back to the header.
  find_path(MSGPACK_INCLUDE_DIR msgpack.hpp REQUIRED)
  add_library(msgpack-cxx INTERFACE IMPORTED)
  target_include_directories(msgpack-cxx INTERFACE ${MSGPACK_INCLUDE_DIR})
endif()

find_package(nlohmann_json 3 REQUIRED)
find_package(PNG REQUIRED)

# --- CUDA toolkit (nvcc) -------------------------------------------------------------------
set(DISTRI_HAVE_CUDA OFF)
if(NOT DISTRI_WITH_CUDA STREQUAL "OFF")
  if(NOT CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
  endif()
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    if(NOT CMAKE_CUDA_ARCHITECTURES)
      # H100/H200 (sm_90). Override with -DCMAKE_CUDA_ARCHITECTURES=... for other cards.
      set(CMAKE_CUDA_ARCHITECTURES 90)
    endif()
    enable_language(CUDA)
    find_package(CUDAToolkit REQUIRED)
    set(DISTRI_HAVE_CUDA ON)
  elseif(DISTRI_WITH_CUDA STREQUAL "ON")
    message(FATAL_ERROR "DISTRI_WITH_CUDA=ON but no CUDA compiler (nvcc) was found")
  endif()
endif()

# --- NCCL ----------------------------------------------------------------------------------
set(DISTRI_HAVE_NCCL OFF)
if(DISTRI_HAVE_CUDA AND NOT DISTRI_WITH_NCCL STREQUAL "OFF")
  # Where NCCL may be: the CUDA toolkit, the system (/usr/include on the GPU machine), $NCCL_HOME
  # or $NCCL_ROOT, and the PyPI wheel nvidia-nccl-cu13 (site-packages/nvidia/nccl/include/nccl.h
  # and lib/libnccl.so.2; the wheel has no unversioned libnccl.so, hence the second name).
  set(_nccl_hints)
  foreach(_root $ENV{NCCL_HOME} $ENV{NCCL_ROOT})
    list(APPEND _nccl_hints ${_root})
  endforeach()
  find_package(Python3 COMPONENTS Interpreter QUIET)
  if(Python3_Interpreter_FOUND)
    execute_process(COMMAND ${Python3_EXECUTABLE} -c "import nvidia.nccl; print(list(nvidia.nccl.__path__)[0])"
                    OUTPUT_VARIABLE _nccl_wheel OUTPUT_STRIP_TRAILING_WHITESPACE
                    RESULT_VARIABLE _nccl_wheel_rc ERROR_QUIET)
    if(_nccl_wheel_rc EQUAL 0 AND EXISTS "${_nccl_wheel}/include/nccl.h")
      list(APPEND _nccl_hints ${_nccl_wheel})
    endif()
  endif()
  find_path(NCCL_INCLUDE_DIR nccl.h
            HINTS ${CUDAToolkit_INCLUDE_DIRS} /usr/include ${_nccl_hints} PATH_SUFFIXES include)
  find_library(NCCL_LIBRARY NAMES nccl libnccl.so.2
               HINTS ${CUDAToolkit_LIBRARY_DIR} /usr/lib/x86_64-linux-gnu ${_nccl_hints}
               PATH_SUFFIXES lib lib64)
  if(NCCL_INCLUDE_DIR AND NCCL_LIBRARY)
    add_library(distri::nccl INTERFACE IMPORTED)
    target_include_directories(distri::nccl INTERFACE ${NCCL_INCLUDE_DIR})
    target_link_libraries(distri::nccl INTERFACE ${NCCL_LIBRARY} CUDA::cudart)
    set(DISTRI_HAVE_NCCL ON)
    message(STATUS "distri: NCCL ${NCCL_INCLUDE_DIR}/nccl.h, ${NCCL_LIBRARY}")
  elseif(DISTRI_WITH_NCCL STREQUAL "ON")
    message(FATAL_ERROR "DISTRI_WITH_NCCL=ON but nccl.h / libnccl were not found")
  endif()
endif()

# --- UCX -----------------------------------------------------------------------------------
set(DISTRI_HAVE_UCX OFF)
if(DISTRI_WITH_UCX)
  find_path(UCX_INCLUDE_DIR ucp/api/ucp.h)
  find_library(UCX_UCP_LIBRARY ucp)
  find_library(UCX_UCS_LIBRARY ucs)
  if(UCX_INCLUDE_DIR AND UCX_UCP_LIBRARY AND UCX_UCS_LIBRARY)
    add_library(distri::ucx INTERFACE IMPORTED)
    target_include_directories(distri::ucx INTERFACE ${UCX_INCLUDE_DIR})
    target_link_libraries(distri::ucx INTERFACE ${UCX_UCP_LIBRARY} ${UCX_UCS_LIBRARY})
    set(DISTRI_HAVE_UCX ON)
  endif()
endif()

# --- LibTorch (from python's torch: torch.utils.cmake_prefix_path) --------------------------
set(DISTRI_HAVE_TORCH OFF)
if(DISTRI_WITH_TORCH)
  if(NOT Torch_DIR)
    find_package(Python3 COMPONENTS Interpreter)
    if(Python3_Interpreter_FOUND)
      execute_process(COMMAND ${Python3_EXECUTABLE} -c "import torch.utils; print(torch.utils.cmake_prefix_path)"
                      OUTPUT_VARIABLE _torch_prefix OUTPUT_STRIP_TRAILING_WHITESPACE
                      RESULT_VARIABLE _torch_rc ERROR_QUIET)
      if(_torch_rc EQUAL 0)
        list(APPEND CMAKE_PREFIX_PATH ${_torch_prefix})
      endif()
    endif()
  endif()
  # Torch's config probes the GPUs of the build machine for nvcc flags unless told the
  # architectures; CI has none. H100/H200 = 9.0 (override: -DTORCH_CUDA_ARCH_LIST=...).
  if(NOT DEFINED TORCH_CUDA_ARCH_LIST AND NOT DEFINED ENV{TORCH_CUDA_ARCH_LIST})
    set(TORCH_CUDA_ARCH_LIST "9.0")
  endif()
  find_package(Torch QUIET)
  if(Torch_FOUND)
    set(DISTRI_HAVE_TORCH ON)
    # TORCH_LIBRARIES carries flags (-D_GLIBCXX_USE_CXX11_ABI) through TORCH_CXX_FLAGS.
    add_library(distri::torch INTERFACE IMPORTED)
    # The torch wheel's libtorch.so exports its own copies of some std::filesystem functions
    # (built against another libstdc++), and one of them (remove_all) crashes when called from
    # our code. Listing libstdc++ before libtorch makes the dynamic linker bind the std::
    # symbols to libstdc++ for every target that links LibTorch.
    target_link_libraries(distri::torch INTERFACE -Wl,--push-state,--no-as-needed stdc++ -Wl,--pop-state
                          ${TORCH_LIBRARIES})
    target_include_directories(distri::torch SYSTEM INTERFACE ${TORCH_INCLUDE_DIRS})
  else()
    message(WARNING "distri: LibTorch not found (pip install torch==2.11.0); actors/ is skipped")
  endif()
endif()
