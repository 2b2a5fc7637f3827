// CLIP text encoders: transformers' CLIPTextModel (SD 1.x/2.x `text_encoder`, SDXL's first
// encoder) and CLIPTextModelWithProjection (SDXL's `text_encoder_2`), weight-compatible.
//
// Parameters carry transformers' state-dict names, so weights load by name:
//   text_model.embeddings.token_embedding.weight          [vocab_size, hidden]
//   text_model.embeddings.position_embedding.weight       [max_position_embeddings, hidden]
//   text_model.encoder.layers.N.self_attn.{q,k,v,out}_proj.{weight,bias}
//   text_model.encoder.layers.N.layer_norm{1,2}.{weight,bias}
//   text_model.encoder.layers.N.mlp.fc{1,2}.{weight,bias}
//   text_model.final_layer_norm.{weight,bias}
//   text_projection.weight                                 [projection_dim, hidden] (WithProjection)
// Files written by transformers >= 5 for CLIPTextModel omit the "text_model." prefix and older
// ones carry a `text_model.embeddings.position_ids` buffer: LoadClipTextModel accepts both.
//
// The computation is transformers' (pre-LayerNorm transformer, causal self-attention through
// at::scaled_dot_product_attention, quick_gelu or gelu MLP). Not thread-safe: one forward at a
// time per module (like any LibTorch module); distinct modules are independent.
#pragma once

#include <ATen/ATen.h>
#include <c10/core/Device.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/common/status.h"

namespace distri::model {

class JsonConfig;

// Mirrors transformers' CLIPTextConfig (defaults are its defaults).
struct ClipTextModelOptions {
  int64_t vocab_size = 49408;
  int64_t hidden_size = 512;
  int64_t intermediate_size = 2048;
  int64_t num_hidden_layers = 12;
  int64_t num_attention_heads = 8;
  int64_t max_position_embeddings = 77;
  std::string hidden_act = "quick_gelu";  // "quick_gelu", "gelu", "gelu_new"/"gelu_pytorch_tanh"
  double layer_norm_eps = 1e-5;
  int64_t projection_dim = 512;  // used only when with_projection
  // Which position pools: eos_token_id 2 (old configs, e.g. SD 1.x) means "the largest id"
  // (argmax of input_ids), any other value "the first position holding eos_token_id".
  int64_t eos_token_id = 2;
  int64_t pad_token_id = 1;
  bool with_projection = false;  // CLIPTextModelWithProjection: adds text_projection

  // Reads a text_encoder/config.json. with_projection is true when "architectures" names
  // CLIPTextModelWithProjection. Errors name the file and key.
  static Result<ClipTextModelOptions> FromConfig(const JsonConfig& config);
  Status Validate() const;  // positive sizes, hidden_size divisible by the heads, known act
};

struct ClipTextOutput {
  at::Tensor last_hidden_state;  // [B, T, hidden], after final_layer_norm
  // transformers' hidden_states: num_hidden_layers + 1 entries, [B, T, hidden] each: the
  // embeddings, then the output of every layer (no final_layer_norm). hidden_states[n - 2]
  // (Python's [-2]) is SDXL's penultimate layer; clip_skip k uses [-(k + 1)]. Empty when
  // forward() was asked not to keep them.
  std::vector<at::Tensor> hidden_states;
  at::Tensor pooled;       // [B, hidden]: last_hidden_state at the EOS position (pooler_output)
  at::Tensor text_embeds;  // [B, projection_dim]: text_projection(pooled); undefined without
};

class ClipTextTransformerImpl;  // text_model.*: embeddings, encoder, final_layer_norm
class ClipParamsImpl;           // a weight (and bias) holder

class ClipTextModelImpl : public torch::nn::Module {
 public:
  // Parameters are allocated uninitialised with `param_options` (dtype/device); load weights
  // (LoadStateDict or LoadClipTextModel) before calling forward.
  explicit ClipTextModelImpl(const ClipTextModelOptions& options,
                             const at::TensorOptions& param_options = at::kFloat);

  // input_ids: int64 [B, T] on the parameters' device, 1 <= T <= max_position_embeddings,
  // every row holding its EOS (the tokenizer's Encode() guarantees it). Throws c10::Error on
  // bad shapes; RunClipTextModel is the checked, Status-returning entry point.
  ClipTextOutput forward(const at::Tensor& input_ids, bool keep_hidden_states = true);

  // text_model.final_layer_norm applied to `hidden` [B, T, hidden]: diffusers' SD 1.x/2.x
  // clip_skip k uses ApplyFinalLayerNorm(hidden_states[-(k + 1)]). Throws c10::Error on a
  // hidden size mismatch.
  at::Tensor ApplyFinalLayerNorm(const at::Tensor& hidden) const;

  const ClipTextModelOptions& options() const { return options_; }

 private:
  ClipTextModelOptions options_;
  std::shared_ptr<ClipTextTransformerImpl> text_model_;
  std::shared_ptr<ClipParamsImpl> text_projection_;  // null without projection
};
TORCH_MODULE(ClipTextModel);

// Builds the model of `dir`/config.json on `device` with `dtype` and loads its weights
// (model[.<variant>].safetensors or the sharded form). Missing, unexpected or mis-shaped
// tensors are InvalidArgument errors naming the component and the tensor ("text_encoder_2:
// text_projection.weight: expected shape [..], file has [..]"). The module is in eval mode
// with requires_grad off.
Result<ClipTextModel> LoadClipTextModel(const std::string& dir, at::ScalarType dtype,
                                        c10::Device device, const std::string& variant = "");

// forward() under c10::InferenceMode (the outputs are inference tensors) after checking
// input_ids (dtype, rank, length, device, ids within vocab_size); LibTorch errors become
// Internal.
Result<ClipTextOutput> RunClipTextModel(ClipTextModel& model, const at::Tensor& input_ids,
                                        bool keep_hidden_states = true);

}  // namespace distri::model
