// The guide's CNN sentiment classifier, sized for tests: tiny data, three epochs, CPU.
local path = std.split(std.thisFile, '/');
local here = if std.length(path) == 1 then '.' else std.join('/', path[:std.length(path) - 1]);
local data = here + '/../data/';

local embedding_dim = std.parseInt(std.extVar('embedding_dim'));
local dropout = std.parseJson(std.extVar('dropout'));
local lr = std.parseJson(std.extVar('lr'));
local max_filter_size = std.parseInt(std.extVar('max_filter_size'));
local num_filters = std.parseInt(std.extVar('num_filters'));
local optimizer = std.extVar('optimizer');

{
  numpy_seed: 42,
  pytorch_seed: 42,
  random_seed: 42,
  dataset_reader: {
    type: 'text_classification_json',
    tokenizer: { type: 'whitespace' },
    token_indexers: { tokens: { type: 'single_id' } },
  },
  datasets_for_vocab_creation: ['train'],
  train_data_path: data + 'train.jsonl',
  validation_data_path: data + 'dev.jsonl',
  model: {
    type: 'basic_classifier',
    text_field_embedder: {
      token_embedders: { tokens: { embedding_dim: embedding_dim } },
    },
    seq2vec_encoder: {
      type: 'cnn',
      embedding_dim: embedding_dim,
      ngram_filter_sizes: std.range(2, max_filter_size),
      num_filters: num_filters,
    },
    dropout: dropout,
  },
  data_loader: { batch_size: 16, shuffle: true },
  trainer: {
    cuda_device: -1,
    num_epochs: 3,
    optimizer: { type: optimizer, lr: lr },
    validation_metric: '+accuracy',
  },
}
