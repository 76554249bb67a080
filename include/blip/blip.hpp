// blip/blip.hpp: everything a user of blipcpp needs, in one include.
//
// Layers, bottom up (each folder includes only the ones before it):
//   core/        tensors, element types, errors, threads, memory-mapped files
//   io/          safetensors checkpoints, config.json, images and their preprocessing, model folders (HF cache)
//   text/        tokenizers
//   kernels/     GEMM, norms, activations, softmax, attention, caches (naive references beside fast paths)
//   nn/          transformer blocks: ViT, BERT layer with cross-attention, Q-Former, OPT
//   models/      BLIP and BLIP-2 as Hugging Face ships them
//   generation/  greedy, beam search and sampling, as Hugging Face's generate()
//   tasks/       Captioner, VisualQA (+ Conversation), ImageTextMatcher, the retrieval index: what applications call
//   evaluation/  the papers' metrics (caption, VQA, retrieval Recall@K), on core/ alone; included on demand,
//                except retrieval.hpp, which the retrieval index (tasks/) scores with
#pragma once

#include "blip/core/dtype.hpp"
#include "blip/core/error.hpp"
#include "blip/core/regular_file.hpp"
#include "blip/core/tensor.hpp"
#include "blip/core/threading.hpp"
#include "blip/generation/generate.hpp"
#include "blip/io/config.hpp"
#include "blip/io/image.hpp"
#include "blip/io/model_location.hpp"
#include "blip/io/output_file.hpp"
#include "blip/io/safetensors.hpp"
#include "blip/io/weight_store.hpp"
#include "blip/models/blip.hpp"
#include "blip/models/blip2.hpp"
#include "blip/tasks/captioner.hpp"
#include "blip/tasks/image_text_matcher.hpp"
#include "blip/tasks/retrieval_index.hpp"
#include "blip/tasks/visual_qa.hpp"
#include "blip/text/tokenizer.hpp"
