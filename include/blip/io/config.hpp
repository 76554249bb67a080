// blip/io/config.hpp: Hugging Face config.json / generation_config.json as
// plain typed structs. This header gathers the ones in blip/io/config/:
//
//   json_reader.hpp        ObjectReader: typed reads that name the file and the dotted key
//   fields.hpp             the visitors that one visit_fields() list per struct drives:
//                          parsing, range checks, JSON output, the list of keys
//   generation_config.hpp  GenerationConfigFile, EarlyStopping, parse_generation_config
//   pretrained_config.hpp  PretrainedConfigCommon (the fields every HF config has)
//   blip_configs.hpp       BlipVisionConfig, BlipTextConfig, BlipConfig, parse_blip_config
//   blip2_configs.hpp      Blip2VisionConfig, Blip2QFormerConfig, OptConfig, T5Config,
//                          Blip2Config, parse_blip2_config
//   model_config.hpp       ModelConfig, parse/load_model_config, load_generation_config,
//                          generation_config_from_model_config, language_model_generation_config
// (JSON files themselves are read by blip/io/json_file.hpp.)
//
// Each struct mirrors one transformers configuration class (the version the
// fixtures came from, 4.45.0.dev0) and holds only what inference needs. Field
// names are HF's key names, and the default member initializers are EXACTLY the
// defaults HF's constructors apply when a key is absent, so a default-built
// struct equals `XxxConfig()` in Python and parsing `{}` gives the same thing.
// Each struct lists its fields once, in visit_fields(). The cross-field rules
// HF's constructors apply are applied after that visit, in each struct's
// read_config(), and are commented where they happen:
//   * BlipConfig:  text_config.encoder_hidden_size := vision_config.hidden_size
//   * Blip2Config: qformer_config.encoder_hidden_size := vision_config.hidden_size;
//                  tie_word_embeddings / is_encoder_decoder := the text model's;
//                  use_decoder_only_language_model := (text model is causal);
//                  no text_config → OPT with OPT's defaults
//   * T5Config:    dense_act_fn / is_gated_act from feed_forward_proj
//                  ("gated-gelu" → gelu_new, gated); num_decoder_layers := num_layers
//   * OptConfig:   word_embed_proj_dim := hidden_size when absent or null
//
// Errors (blip::Error) name the file, the dotted key and what was expected.
//
// Every struct converts to JSON with HF's key names (`nlohmann::json j = config;`),
// which the tests use to compare field by field with HF's own `to_dict()`
// (tests/data/config_expectations.json, written by the oracle).
#pragma once

#include "blip/io/config/blip2_configs.hpp"
#include "blip/io/config/blip_configs.hpp"
#include "blip/io/config/generation_config.hpp"
#include "blip/io/config/json_reader.hpp"
#include "blip/io/config/model_config.hpp"
#include "blip/io/config/pretrained_config.hpp"
