"""`cnn_techniques` (sheet 003): the pytorch/examples MNIST CNN on Fashion-MNIST, augmentation,
batch norm, fine-tuning from MNIST, t-SNE of fc1 features, activation maximisation."""
