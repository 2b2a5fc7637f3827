// The LibTorch headers the actors use, precompiled once (see actors/CMakeLists.txt).
// Only the parts we use: tensors, nn modules we build on, no optimizers/data loaders/JIT.
#pragma once
#include <ATen/ATen.h>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/modules/embedding.h>
#include <torch/types.h>
