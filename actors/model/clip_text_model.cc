#include "actors/model/clip_text_model.h"

#include <c10/core/InferenceMode.h>
#include <torch/nn/modules/container/modulelist.h>

#include <utility>

#include "actors/model/json_config.h"
#include "actors/model/safetensors.h"

namespace distri::model {

// A leaf holding `weight` (and `bias`) under PyTorch's names. Allocated with at::empty rather
// than torch::nn::Linear & co., which would fill them with random values on the CPU only for
// the loader to overwrite them (seconds for SDXL's 700M-parameter second encoder).
class ClipParamsImpl : public torch::nn::Module {
 public:
  ClipParamsImpl(at::IntArrayRef weight_shape, int64_t bias_size, const at::TensorOptions& o) {
    weight = register_parameter("weight", at::empty(weight_shape, o), /*requires_grad=*/false);
    if (bias_size > 0) {
      bias = register_parameter("bias", at::empty({bias_size}, o), /*requires_grad=*/false);
    }
  }
  at::Tensor Linear(const at::Tensor& x) const { return at::linear(x, weight, bias); }
  at::Tensor LayerNorm(const at::Tensor& x, double eps) const {
    return at::layer_norm(x, {weight.size(0)}, weight, bias, eps);
  }
  at::Tensor weight, bias;
};

// Named (not anonymous) because ClipTextTransformerImpl, declared in the header, holds them.
namespace clip_internal {

std::shared_ptr<ClipParamsImpl> Linear(int64_t in, int64_t out, const at::TensorOptions& o,
                                       bool bias = true) {
  return std::make_shared<ClipParamsImpl>(at::IntArrayRef{out, in}, bias ? out : 0, o);
}
std::shared_ptr<ClipParamsImpl> LayerNorm(int64_t n, const at::TensorOptions& o) {
  return std::make_shared<ClipParamsImpl>(at::IntArrayRef{n}, n, o);
}

class ClipAttentionImpl : public torch::nn::Module {
 public:
  ClipAttentionImpl(const ClipTextModelOptions& opt, const at::TensorOptions& o)
      : heads_(opt.num_attention_heads) {
    const int64_t h = opt.hidden_size;
    k_proj_ = register_module("k_proj", Linear(h, h, o));
    v_proj_ = register_module("v_proj", Linear(h, h, o));
    q_proj_ = register_module("q_proj", Linear(h, h, o));
    out_proj_ = register_module("out_proj", Linear(h, h, o));
  }
  // Causal self-attention; SDPA's default scale is transformers' head_dim^-0.5.
  at::Tensor forward(const at::Tensor& x) const {
    const int64_t b = x.size(0), t = x.size(1), c = x.size(2);
    auto heads = [&](const ClipParamsImpl& proj) {
      return proj.Linear(x).view({b, t, heads_, c / heads_}).transpose(1, 2);
    };
    at::Tensor o = at::scaled_dot_product_attention(heads(*q_proj_), heads(*k_proj_),
                                                    heads(*v_proj_), /*attn_mask=*/{},
                                                    /*dropout_p=*/0.0, /*is_causal=*/true);
    return out_proj_->Linear(o.transpose(1, 2).reshape({b, t, c}));
  }

 private:
  int64_t heads_;
  std::shared_ptr<ClipParamsImpl> k_proj_, v_proj_, q_proj_, out_proj_;
};

class ClipMlpImpl : public torch::nn::Module {
 public:
  ClipMlpImpl(const ClipTextModelOptions& opt, const at::TensorOptions& o) : act_(opt.hidden_act) {
    fc1_ = register_module("fc1", Linear(opt.hidden_size, opt.intermediate_size, o));
    fc2_ = register_module("fc2", Linear(opt.intermediate_size, opt.hidden_size, o));
  }
  at::Tensor forward(const at::Tensor& x) const {
    at::Tensor h = fc1_->Linear(x);
    if (act_ == "quick_gelu") {
      h = h * at::sigmoid(1.702 * h);  // OpenAI CLIP's sigmoid approximation of GELU
    } else if (act_ == "gelu") {
      h = at::gelu(h);
    } else {  // gelu_new / gelu_pytorch_tanh (Validate() admits nothing else)
      h = at::gelu(h, "tanh");
    }
    return fc2_->Linear(h);
  }

 private:
  std::string act_;
  std::shared_ptr<ClipParamsImpl> fc1_, fc2_;
};

class ClipEncoderLayerImpl : public torch::nn::Module {
 public:
  ClipEncoderLayerImpl(const ClipTextModelOptions& opt, const at::TensorOptions& o)
      : eps_(opt.layer_norm_eps) {
    self_attn_ = register_module("self_attn", std::make_shared<ClipAttentionImpl>(opt, o));
    layer_norm1_ = register_module("layer_norm1", LayerNorm(opt.hidden_size, o));
    mlp_ = register_module("mlp", std::make_shared<ClipMlpImpl>(opt, o));
    layer_norm2_ = register_module("layer_norm2", LayerNorm(opt.hidden_size, o));
  }
  at::Tensor forward(const at::Tensor& x) const {
    at::Tensor h = x + self_attn_->forward(layer_norm1_->LayerNorm(x, eps_));
    return h + mlp_->forward(layer_norm2_->LayerNorm(h, eps_));
  }

 private:
  double eps_;
  std::shared_ptr<ClipAttentionImpl> self_attn_;
  std::shared_ptr<ClipParamsImpl> layer_norm1_, layer_norm2_;
  std::shared_ptr<ClipMlpImpl> mlp_;
};

// text_model.embeddings: token + learned absolute position embeddings.
class ClipTextEmbeddingsImpl : public torch::nn::Module {
 public:
  ClipTextEmbeddingsImpl(const ClipTextModelOptions& opt, const at::TensorOptions& o) {
    token_ = register_module(
        "token_embedding",
        std::make_shared<ClipParamsImpl>(at::IntArrayRef{opt.vocab_size, opt.hidden_size}, 0, o));
    position_ = register_module(
        "position_embedding",
        std::make_shared<ClipParamsImpl>(
            at::IntArrayRef{opt.max_position_embeddings, opt.hidden_size}, 0, o));
  }
  at::Tensor forward(const at::Tensor& ids) const {
    const int64_t t = ids.size(1);
    TORCH_CHECK(t <= position_->weight.size(0), "CLIP text encoder: sequence of ", t,
                " tokens, max_position_embeddings is ", position_->weight.size(0));
    return at::embedding(token_->weight, ids) + position_->weight.narrow(0, 0, t).unsqueeze(0);
  }

 private:
  std::shared_ptr<ClipParamsImpl> token_, position_;
};

}  // namespace clip_internal

using namespace clip_internal;  // NOLINT: this file's own internals

class ClipTextTransformerImpl : public torch::nn::Module {
 public:
  ClipTextTransformerImpl(const ClipTextModelOptions& opt, const at::TensorOptions& o)
      : opt_(opt) {
    embeddings_ = register_module("embeddings", std::make_shared<ClipTextEmbeddingsImpl>(opt, o));
    auto encoder = register_module("encoder", std::make_shared<torch::nn::Module>());
    torch::nn::ModuleList list;
    for (int64_t i = 0; i < opt.num_hidden_layers; ++i) {
      layers_.push_back(std::make_shared<ClipEncoderLayerImpl>(opt, o));
      list->push_back(layers_.back());
    }
    encoder->register_module("layers", list);
    final_layer_norm_ = register_module("final_layer_norm", LayerNorm(opt.hidden_size, o));
  }

  at::Tensor FinalLayerNorm(const at::Tensor& h) const {
    return final_layer_norm_->LayerNorm(h, opt_.layer_norm_eps);
  }

  ClipTextOutput forward(const at::Tensor& ids, bool keep_hidden_states) const {
    ClipTextOutput out;
    at::Tensor h = embeddings_->forward(ids);
    if (keep_hidden_states) out.hidden_states.push_back(h);
    for (const auto& layer : layers_) {
      h = layer->forward(h);
      if (keep_hidden_states) out.hidden_states.push_back(h);
    }
    out.last_hidden_state = FinalLayerNorm(h);
    // Pooling position exactly as transformers (modeling_clip.py, CLIPTextModel.forward).
    const at::Tensor ids32 = ids.to(at::kInt);
    const at::Tensor position = opt_.eos_token_id == 2
                                    ? ids32.argmax(-1)
                                    : ids32.eq(opt_.eos_token_id).to(at::kInt).argmax(-1);
    const at::Tensor rows = at::arange(ids.size(0), ids.options().dtype(at::kLong));
    out.pooled = out.last_hidden_state.index({rows, position});
    return out;
  }

 private:
  ClipTextModelOptions opt_;
  std::shared_ptr<ClipTextEmbeddingsImpl> embeddings_;
  std::vector<std::shared_ptr<ClipEncoderLayerImpl>> layers_;
  std::shared_ptr<ClipParamsImpl> final_layer_norm_;
};

ClipTextModelImpl::ClipTextModelImpl(const ClipTextModelOptions& options,
                                     const at::TensorOptions& param_options)
    : options_(options) {
  text_model_ = register_module("text_model",
                                std::make_shared<ClipTextTransformerImpl>(options, param_options));
  if (options.with_projection) {
    text_projection_ = register_module(
        "text_projection",
        Linear(options.hidden_size, options.projection_dim, param_options, /*bias=*/false));
  }
}

ClipTextOutput ClipTextModelImpl::forward(const at::Tensor& input_ids, bool keep_hidden_states) {
  TORCH_CHECK(input_ids.dim() == 2, "CLIP text encoder: input_ids must be [batch, tokens], got ",
              input_ids.sizes());
  ClipTextOutput out = text_model_->forward(input_ids, keep_hidden_states);
  if (text_projection_) out.text_embeds = text_projection_->Linear(out.pooled);
  return out;
}

at::Tensor ClipTextModelImpl::ApplyFinalLayerNorm(const at::Tensor& hidden) const {
  return text_model_->FinalLayerNorm(hidden);
}

Status ClipTextModelOptions::Validate() const {
  auto positive = [](const char* name, int64_t v) -> Status {
    if (v > 0) return Status::Ok();
    return Status::InvalidArgument(std::string(name) + " must be positive, got " + std::to_string(v));
  };
  DISTRI_RETURN_IF_ERROR(positive("vocab_size", vocab_size));
  DISTRI_RETURN_IF_ERROR(positive("hidden_size", hidden_size));
  DISTRI_RETURN_IF_ERROR(positive("intermediate_size", intermediate_size));
  DISTRI_RETURN_IF_ERROR(positive("num_hidden_layers", num_hidden_layers));
  DISTRI_RETURN_IF_ERROR(positive("num_attention_heads", num_attention_heads));
  DISTRI_RETURN_IF_ERROR(positive("max_position_embeddings", max_position_embeddings));
  if (with_projection) DISTRI_RETURN_IF_ERROR(positive("projection_dim", projection_dim));
  if (hidden_size % num_attention_heads != 0) {
    return Status::InvalidArgument("hidden_size " + std::to_string(hidden_size) +
                                   " is not divisible by num_attention_heads " +
                                   std::to_string(num_attention_heads));
  }
  if (hidden_act != "quick_gelu" && hidden_act != "gelu" && hidden_act != "gelu_new" &&
      hidden_act != "gelu_pytorch_tanh") {
    return Status::InvalidArgument("hidden_act '" + hidden_act +
                                   "' is not supported (quick_gelu, gelu, gelu_new, "
                                   "gelu_pytorch_tanh)");
  }
  if (!(layer_norm_eps > 0)) return Status::InvalidArgument("layer_norm_eps must be positive");
  return Status::Ok();
}

Result<ClipTextModelOptions> ClipTextModelOptions::FromConfig(const JsonConfig& config) {
  ClipTextModelOptions o;
  DISTRI_ASSIGN_OR_RETURN(o.vocab_size, config.GetInt("vocab_size", o.vocab_size));
  DISTRI_ASSIGN_OR_RETURN(o.hidden_size, config.GetInt("hidden_size", o.hidden_size));
  DISTRI_ASSIGN_OR_RETURN(o.intermediate_size,
                          config.GetInt("intermediate_size", o.intermediate_size));
  DISTRI_ASSIGN_OR_RETURN(o.num_hidden_layers,
                          config.GetInt("num_hidden_layers", o.num_hidden_layers));
  DISTRI_ASSIGN_OR_RETURN(o.num_attention_heads,
                          config.GetInt("num_attention_heads", o.num_attention_heads));
  DISTRI_ASSIGN_OR_RETURN(o.max_position_embeddings,
                          config.GetInt("max_position_embeddings", o.max_position_embeddings));
  DISTRI_ASSIGN_OR_RETURN(o.hidden_act, config.GetString("hidden_act", o.hidden_act));
  DISTRI_ASSIGN_OR_RETURN(o.layer_norm_eps, config.GetDouble("layer_norm_eps", o.layer_norm_eps));
  DISTRI_ASSIGN_OR_RETURN(o.projection_dim, config.GetInt("projection_dim", o.projection_dim));
  DISTRI_ASSIGN_OR_RETURN(o.eos_token_id, config.GetInt("eos_token_id", o.eos_token_id));
  DISTRI_ASSIGN_OR_RETURN(o.pad_token_id, config.GetInt("pad_token_id", o.pad_token_id));
  if (config.Has("architectures")) {
    DISTRI_ASSIGN_OR_RETURN(std::vector<std::string> arch, config.GetStringList("architectures"));
    for (const std::string& a : arch) o.with_projection |= a == "CLIPTextModelWithProjection";
  }
  Status valid = o.Validate();
  if (!valid.ok()) return valid.WithContext(config.name());
  return o;
}

namespace {

// "/models/sdxl/text_encoder_2/" -> "text_encoder_2", for error messages.
std::string ComponentOf(const std::string& dir) {
  std::string d = dir;
  while (d.size() > 1 && d.back() == '/') d.pop_back();
  const size_t slash = d.rfind('/');
  return slash == std::string::npos ? d : d.substr(slash + 1);
}

// Brings the names of every CLIP text checkpoint to ours: transformers >= 5 saves
// CLIPTextModel without the "text_model." prefix; the position_ids buffer (saved by older
// transformers) is derived, not learned, so it is dropped.
TensorMap CanonicalNames(TensorMap weights) {
  TensorMap out;
  for (auto& [name, tensor] : weights) {
    if (name.size() >= 12 && name.compare(name.size() - 12, 12, "position_ids") == 0) continue;
    const bool ours = name.rfind("text_model.", 0) == 0 || name.rfind("text_projection.", 0) == 0;
    out.emplace(ours ? name : "text_model." + name, std::move(tensor));
  }
  return out;
}

}  // namespace

Result<ClipTextModel> LoadClipTextModel(const std::string& dir, at::ScalarType dtype,
                                        c10::Device device, const std::string& variant) {
  const std::string component = ComponentOf(dir);
  DISTRI_ASSIGN_OR_RETURN(JsonConfig config, JsonConfig::Load(dir + "/config.json"));
  DISTRI_ASSIGN_OR_RETURN(ClipTextModelOptions options, ClipTextModelOptions::FromConfig(config));
  DISTRI_ASSIGN_OR_RETURN(TensorMap raw, LoadComponentWeights(dir, "model", variant, dtype));
  TensorMap weights = CanonicalNames(std::move(raw));
  // A config without "architectures" says nothing about the projection: the files decide.
  if (!config.Has("architectures") && weights.count("text_projection.weight")) {
    options.with_projection = true;
    DISTRI_RETURN_IF_ERROR(options.Validate().WithContext(config.name()));
  }
  try {
    ClipTextModel model(options, at::TensorOptions().dtype(dtype).device(device));
    DISTRI_RETURN_IF_ERROR(LoadStateDict(*model, weights, component));
    model->eval();
    return model;
  } catch (const c10::Error& e) {
    return Status::Internal(component + ": building the CLIP text encoder failed: " +
                            e.what_without_backtrace());
  }
}

Result<ClipTextOutput> RunClipTextModel(ClipTextModel& model, const at::Tensor& input_ids,
                                        bool keep_hidden_states) {
  const ClipTextModelOptions& o = model->options();
  if (!input_ids.defined() || input_ids.scalar_type() != at::kLong || input_ids.dim() != 2 ||
      input_ids.size(0) < 1 || input_ids.size(1) < 1) {
    return Status::InvalidArgument("CLIP text encoder: input_ids must be a non-empty int64 "
                                   "[batch, tokens] tensor");
  }
  if (input_ids.size(1) > o.max_position_embeddings) {
    return Status::InvalidArgument("CLIP text encoder: " + std::to_string(input_ids.size(1)) +
                                   " tokens, max_position_embeddings is " +
                                   std::to_string(o.max_position_embeddings));
  }
  try {
    c10::InferenceMode guard;
    const at::Tensor w = model->parameters().front();
    if (input_ids.device() != w.device()) {
      return Status::InvalidArgument("CLIP text encoder: input_ids are on " +
                                     input_ids.device().str() + ", the model on " +
                                     w.device().str());
    }
    const int64_t lo = input_ids.min().item<int64_t>(), hi = input_ids.max().item<int64_t>();
    if (lo < 0 || hi >= o.vocab_size) {
      return Status::InvalidArgument("CLIP text encoder: token ids must be in [0, " +
                                     std::to_string(o.vocab_size) + "), found " +
                                     std::to_string(lo < 0 ? lo : hi));
    }
    return model->forward(input_ids, keep_hidden_states);
  } catch (const c10::Error& e) {
    return Status::Internal(std::string("CLIP text encoder: ") + e.what_without_backtrace());
  }
}

}  // namespace distri::model
