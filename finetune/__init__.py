"""LoRA fine-tuning: dataset builder, training and evaluation."""
