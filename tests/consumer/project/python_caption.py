"""The Python package as installed: import it from the prefix and caption with the options facade_caption
uses (3 beams), printing the same line. The install packaging test runs it:
    PYTHONPATH=<prefix>/lib/python3/dist-packages python3 python_caption.py VERSION MODEL_DIR IMAGE TOKENIZER_DIR
"""
import sys

import blipcpp

version, model_dir, image, tokenizer = sys.argv[1:5]
if blipcpp.__version__ != version:
    sys.exit(f"blipcpp {blipcpp.__version__} imported from {blipcpp.__file__}, expected {version}")
captioner = blipcpp.Captioner.from_pretrained(model_dir, tokenizer=tokenizer)
print(captioner.caption(image, num_beams=3)[0].text)
