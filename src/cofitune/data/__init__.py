"""The SFT data: where rows come from (`sources`: JSONL, JSON, Parquet, CSV, Arrow, the Hub via `hub`),
their formats (`formats`: Alpaca, chat messages, ShareGPT, renamed columns), validation with file and
line or row, prompts, tokenization with the loss on the response, every assistant turn (`turns`) or
everything, truncation reports and batches (`sft`). May import `infra`.
"""
