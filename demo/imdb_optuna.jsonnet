// The AllenNLP guide's imdb_optuna.jsonnet (CNN sentiment classifier), sized for 2 CPU cores: a subset
// of the real IMDB reviews (demo/data/, written by `python -m demo.reviews`), 3 epochs, and
// Adam instead of SGD (SGD needs the full data and 15 epochs to leave chance level).
local batch_size = 32;
local cuda_device = -1;
local num_epochs = 3;
local seed = 42;
local path = std.split(std.thisFile, '/');
local here = if std.length(path) == 1 then '.' else std.join('/', path[:std.length(path) - 1]);
local train_data_path = here + '/data/train.jsonl';
local validation_data_path = here + '/data/dev.jsonl';

local embedding_dim = std.parseInt(std.extVar('embedding_dim'));
local dropout = std.parseJson(std.extVar('dropout'));
local lr = std.parseJson(std.extVar('lr'));
local max_filter_size = std.parseInt(std.extVar('max_filter_size'));
local num_filters = std.parseInt(std.extVar('num_filters'));
local output_dim = std.parseInt(std.extVar('output_dim'));
local ngram_filter_sizes = std.range(2, max_filter_size);

{
  numpy_seed: seed,
  pytorch_seed: seed,
  random_seed: seed,
  dataset_reader: {
    type: 'text_classification_json',
    tokenizer: {
      type: 'whitespace',
    },
    token_indexers: {
      tokens: {
        type: 'single_id',
      },
    },
  },
  datasets_for_vocab_creation: ['train'],
  train_data_path: train_data_path,
  validation_data_path: validation_data_path,
  model: {
    type: 'basic_classifier',
    text_field_embedder: {
      token_embedders: {
        tokens: {
          embedding_dim: embedding_dim,
        },
      },
    },
    seq2vec_encoder: {
      type: 'cnn',
      embedding_dim: embedding_dim,
      ngram_filter_sizes: ngram_filter_sizes,
      num_filters: num_filters,
      output_dim: output_dim,
    },
    dropout: dropout,
  },
  data_loader: {
    batch_size: batch_size,
    shuffle: true,
  },
  trainer: {
    cuda_device: cuda_device,
    num_epochs: num_epochs,
    optimizer: {
      lr: lr,
      type: 'adam',
    },
    validation_metric: '+accuracy',
  },
}
