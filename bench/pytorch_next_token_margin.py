#!/usr/bin/env python3
"""The next-token logits HF computes after a given prefix, for a folder `pytorch_blip2_baseline.py make` wrote.

When two engines' greedy ids part at some step, this says how close the two candidates were in PyTorch:

    ../shared/oracle/env.sh bench/pytorch_next_token_margin.py MODEL_DIR --prefix 0,7534,1673 --candidates 26773,11403

The prefix is the ids both engines generated (for an encoder-decoder model: the decoder ids from the start id
on; for OPT: the ids after the prompt); the image and prompt are the folder's bench_inputs.safetensors. Prints one
JSON line: the five best ids and logits, and the logits of --candidates. Set OPENBLAS_CORETYPE to see how much
PyTorch's own kernel choice moves them.
"""
import argparse
import json
import os

import torch


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model_dir")
    parser.add_argument("--prefix", required=True, help="comma-separated ids generated so far")
    parser.add_argument("--candidates", default="", help="comma-separated ids whose logits to print")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    import transformers
    from safetensors.torch import load_file

    torch.set_num_threads(args.threads)
    model = transformers.Blip2ForConditionalGeneration.from_pretrained(args.model_dir, attn_implementation="eager")
    model.eval()
    inputs = load_file(os.path.join(args.model_dir, "bench_inputs.safetensors"))
    prefix = [int(token) for token in args.prefix.split(",")]
    with torch.no_grad():
        if model.config.use_decoder_only_language_model:
            input_ids = torch.cat([inputs["input_ids"], torch.tensor([prefix])], dim=1)
            logits = model(pixel_values=inputs["pixel_values"], input_ids=input_ids).logits[0, -1]
        else:
            logits = model(pixel_values=inputs["pixel_values"], input_ids=inputs["input_ids"],
                           decoder_input_ids=torch.tensor([prefix])).logits[0, -1]
    best = torch.topk(logits, 5)
    result = {"top_ids": best.indices.tolist(), "top_logits": best.values.tolist(),
              "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE", "")}
    for token in filter(None, args.candidates.split(",")):
        result[f"logit_{token}"] = logits[int(token)].item()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
