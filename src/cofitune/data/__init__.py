"""The SFT data: row formats (Alpaca, chat), validation with file and line, prompts, tokenization
with the loss on the response, truncation reports and batches (`sft`). May import `infra`.
"""
