/* nnctl: inspect, change and run nnkit models from the shell.
 *
 *   nnctl [GLOBAL OPTIONS] COMMAND [OPTIONS] ARGS
 *
 * main() parses the global options up to the first non-option (the
 * command), then hands the rest to the command's own function through the
 * dispatch table below.  Exit codes: 0 ok, 1 error, 2 bad usage. */
#include "nnctl.h"

#include <string.h>
#include <locale.h>

static const NnctlCommand commands[] = {
  { "plugins", "[TYPE]",
    "List the loaded plugins (types, ops, aliases) and those that failed, "
    "or show one type's signature and schema.",
    "TYPE may be any alias of a type, e.g. torch.relu.\n\n"
    "Examples:\n"
    "  nnctl plugins\n"
    "  nnctl plugins Conv2d\n"
    "  nnctl plugins torch.nn.functional.hardtanh\n"
    "  nnctl plugins Conv2d --config '{\"in_channels\": 3, \"out_channels\": 8,"
    " \"kernel_size\": 3}'\n"
    "  nnctl --plugin-path ./my-plugins plugins --json",
    nnctl_cmd_plugins },
  { "show", "MODEL",
    "Print the model as PyTorch's print(model) does.",
    "Examples:\n"
    "  nnctl show resnet18.json\n"
    "  nnctl show resnet18.json --depth 1\n"
    "  nnctl show model.json --init-seed 0   # descriptor without weights",
    nnctl_cmd_show },
  { "modules", "MODEL",
    "List modules: flattened index (PyTorch's named_modules numbering), "
    "path, class, type and parameter count.",
    "Examples:\n"
    "  nnctl modules resnet18.json\n"
    "  nnctl modules resnet18.json --glob 'layer*.0.conv?'\n"
    "  nnctl modules resnet18.json --depth 1 --json",
    nnctl_cmd_modules },
  { "params", "MODEL",
    "List parameters (and buffers): name, shape, dtype and element count, "
    "with totals.",
    "Examples:\n"
    "  nnctl params resnet18.json\n"
    "  nnctl params resnet18.json --glob '*.bias'\n"
    "  nnctl params resnet18.json --buffers --glob 'bn1.*'",
    nnctl_cmd_params },
  { "get", "MODEL REF",
    "Show one module: its text, config, parameters, index and path.  REF "
    "is a dotted path (layer2.0.conv1) or a flattened index (#17).",
    "Examples:\n"
    "  nnctl get resnet18.json layer2.0.conv1\n"
    "  nnctl get resnet18.json '#4' --json\n"
    "  nnctl get resnet18.json fc --param weight -o fc_weight.safetensors",
    nnctl_cmd_get },
  { "summary", "MODEL",
    "A torchinfo-style table: output shape, Param # and Mult-Adds per "
    "module, with totals and sizes.",
    "Examples:\n"
    "  nnctl summary resnet18.json --input-shape 1,3,224,224\n"
    "  nnctl summary resnet18.json --depth 2\n"
    "  nnctl summary gpt.json --input-spec idx:int64:1,64\n"
    "(without --input-shape or --input-spec, the inputs recorded in the "
    "model are used)",
    nnctl_cmd_summary },
  { "replace", "MODEL REF NEW",
    "Replace the module at REF with NEW (inline JSON or @file.json), "
    "shape-checked, and write the result to -o OUT.",
    "NEW is a module node: {\"type\": ..., \"config\": {...}, \"children\": "
    "[...]}.\nThe new module is initialised as PyTorch initialises its type "
    "(--seed, default 0),\nor loaded from --weights-from FILE.  Nothing is "
    "written if anything fails.\n\n"
    "Examples:\n"
    "  nnctl replace resnet18.json fc '{\"type\": \"Linear\", \"config\": "
    "{\"in_features\": 512, \"out_features\": 10}}' -o r10.json\n"
    "  nnctl replace resnet18.json '#4' @new_conv.json --seed 7 -o out.json\n"
    "  nnctl replace model.json layer2.0.conv2 @conv.json --weights-from "
    "conv.safetensors -o out.safetensors",
    nnctl_cmd_replace },
  { "insert", "MODEL CONTAINER NEW",
    "Insert NEW into the Sequential, ModuleList or ModuleDict at CONTAINER "
    "(appends unless --index), shape-checked, and write -o OUT.",
    "Names are never renumbered: without --name, the new item gets the "
    "smallest integer key\ngreater than every integer key present.  "
    "ModuleDict needs --name.\n\n"
    "Examples:\n"
    "  nnctl insert digits.json classifier '{\"type\": \"Dropout\"}' "
    "--index 0 -o out.json\n"
    "  nnctl insert digits.json classifier '{\"type\": \"Softmax\", "
    "\"config\": {\"dim\": 1}}' -o out.json\n"
    "  nnctl insert model.json features @block.json --index=-1 --name extra "
    "-o out.json",
    nnctl_cmd_insert },
  { "delete", "MODEL REF",
    "Delete the module at REF from its container, shape-checked, and "
    "write -o OUT.",
    "Examples:\n"
    "  nnctl delete vgg11.json classifier.5 -o out.json\n"
    "  nnctl delete vgg11.json '#30' -o out.json",
    nnctl_cmd_delete },
  { "wrap", "MODEL REF NEW",
    "Replace X at REF with Sequential(X, NEW) (or Sequential(NEW, X) with "
    "--before), shape-checked, and write -o OUT.",
    "Examples:\n"
    "  nnctl wrap resnet18.json fc '{\"type\": \"Softmax\", \"config\": "
    "{\"dim\": 1}}' -o out.json\n"
    "  nnctl wrap resnet18.json conv1 '{\"type\": \"Identity\"}' --before "
    "-o out.json",
    nnctl_cmd_wrap },
  { "run", "MODEL",
    "Run the model on its inputs and print every output tensor and top-k.",
    "The inputs come from --input FILE.safetensors[:NAME] (by argument name, "
    "or in order),\n--random NAME:DTYPE:SHAPE[:LO..HI], --random SHAPE, "
    "--random-inputs, or the samples\nbundled beside the model "
    "(samples.safetensors).  Outputs are named output,\noutput.0, "
    "output.KEY, ...\n\n"
    "Examples:\n"
    "  nnctl run gpt.json --random idx:int64:1,64:0..50257 --output "
    "logits.safetensors\n"
    "  nnctl run two.json --input batch.safetensors\n"
    "  nnctl run two.json --random-inputs --seed 3\n"
    "  nnctl run resnet18.json --random 1,3,224,224 --seed 1 --topk 5\n"
    "  nnctl run resnet18.json --input x.safetensors:input --output "
    "y.safetensors\n"
    "  nnctl run resnet18.json --random 1,3,224,224 --hook layer4 --hook "
    "'layer1.*.conv1' --save-activations acts.safetensors\n"
    "  nnctl --threads 1 run resnet18.json --random 1,3,224,224 --repeat 10\n"
    "  nnctl run examples/digits/digits.json",
    nnctl_cmd_run },
  { "finetune", "MODEL",
    "Fine-tune a classifier on a data file with cross entropy, SGD or AdamW, "
    "frozen globs and a checkpoint after each epoch.",
    "The data files hold 'input' [N, ...] float32 and 'labels' [N] int64.  "
    "Batches are shuffled by --seed unless --no-shuffle.  Each epoch prints "
    "the train (and --val) loss and accuracy and writes OUT and "
    "OUT-stem.optim.safetensors atomically; --resume OUT continues.  See "
    "docs/TRAINING.md.\n\n"
    "Examples:\n"
    "  nnctl finetune digits5.json --data train.safetensors --freeze "
    "'features.*' --epochs 3 --batch-size 32 --lr 0.1 --momentum 0.9 -o tuned.json\n"
    "  nnctl finetune m.json --data t.safetensors --val v.safetensors "
    "--optimizer adamw --lr 1e-3 --weight-decay 0.01 -o out.json\n"
    "  nnctl finetune m.json --data t.safetensors --resume out.json --epochs 2 -o out.json",
    nnctl_cmd_finetune },
  { "diff", "A B",
    "Compare two models: added, removed and changed modules, and the max "
    "abs difference of each tensor.",
    "Examples:\n"
    "  nnctl diff resnet18.json r10.json\n"
    "  nnctl diff a.safetensors b.safetensors --json",
    nnctl_cmd_diff },
  { "dot", "MODEL",
    "Write a Graphviz picture of the module tree and its dataflow.",
    "Examples:\n"
    "  nnctl dot resnet18.json -o resnet18.dot && dot -Tsvg resnet18.dot "
    "-o resnet18.svg\n"
    "  nnctl dot digits.json | dot -Tsvg > digits.svg",
    nnctl_cmd_dot },
  { "export", "SOURCE",
    "Export a PyTorch model (torchvision name or torch.save file) with "
    "tools/torch2nn; needs python3-torch.",
    "Arguments after -- go to torch2nn unchanged.\n\n"
    "Examples:\n"
    "  nnctl export resnet18 -o resnet18.json\n"
    "  nnctl export mymodel.pt -o mymodel.safetensors",
    nnctl_cmd_export },
  { "convert", "IN",
    "Convert weights (.pth/.pt, safetensors, sharded index) to safetensors "
    "or shards.",
    "The input format is found from the file's first bytes, not its name.\n"
    "A .pth is read by a restricted unpickler that never runs code "
    "(docs/WEIGHTS.md).\n\n"
    "Examples:\n"
    "  nnctl convert resnet18.pth -o resnet18.safetensors\n"
    "  nnctl convert checkpoint.pt --key state_dict --strip-prefix module. "
    "-o model.safetensors\n"
    "  nnctl convert big.safetensors --max-shard-size 2GB "
    "-o big.safetensors.index.json",
    nnctl_cmd_convert },
  { "doctor", "",
    "Check the installation: version, plugin search path and where each "
    "plugin came from, CPU features, BLAS, and the provider of each type.",
    "Examples:\n"
    "  nnctl doctor\n"
    "  nnctl --plugin-path ./my-plugins doctor --json",
    nnctl_cmd_doctor },
};

static const NnctlCommand *
find_command (const char *name)
{
  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    if (strcmp (commands[i].name, name) == 0)
      return &commands[i];
  return NULL;
}

static char *
commands_summary (void)
{
  GString *s = g_string_new ("Inspect, change and run nnkit models.\n\n"
                             "Commands:");
  for (guint i = 0; i < G_N_ELEMENTS (commands); i++) {
    g_autofree char *head = g_strdup_printf ("%s %s", commands[i].name,
                                             commands[i].args);
    const char *first_dot = strstr (commands[i].summary, ". ");
    int n = first_dot ? (int) (first_dot - commands[i].summary + 1)
                      : (int) strlen (commands[i].summary);
    g_string_append_printf (s, "\n  %-26s %.*s", head, n,
                            commands[i].summary);
  }
  return g_string_free (s, FALSE);
}

static const char global_description[] =
  "MODEL is a descriptor .json with its weights beside it (same stem, "
  ".safetensors) or\nnamed by --weights, or a single-file .safetensors "
  "model.  REF is a dotted path\n(layer2.0.conv1) or a flattened index "
  "(#17, PyTorch's named_modules numbering).\n\n"
  "Exit codes: 0 success, 1 error, 2 bad usage.  Errors are one line on "
  "stderr:\n  nnctl: <what>: <why>\n\n"
  "Examples:\n"
  "  nnctl plugins\n"
  "  nnctl show examples/digits/digits.json\n"
  "  nnctl summary resnet18.json --input-shape 1,3,224,224\n"
  "  nnctl replace resnet18.json fc '{\"type\": \"Linear\", \"config\": "
  "{\"in_features\": 512, \"out_features\": 10}}' -o r10.json\n"
  "  nnctl COMMAND --help\n\n"
  "Full documentation: docs/NNCTL.md";

static int
run_help_command (NnctlGlobal *g, int argc, char **argv,
                  GOptionContext *ctx)
{
  if (argc > 2) {
    const NnctlCommand *cmd = find_command (argv[2]);
    if (!cmd)
      return nnctl_usage ("help", "'%s' is not a command (see 'nnctl "
                          "--help')", argv[2]);
    char *fake[] = { (char *) cmd->name, (char *) "--help", NULL };
    return cmd->run (g, cmd, 2, fake);
  }
  g_autofree char *text = g_option_context_get_help (ctx, TRUE, NULL);
  fputs (text, stdout);
  return NNCTL_EXIT_OK;
}

static const char *
closest_command (const char *name)
{
  const char *best = NULL;
  guint best_score = 0;

  /* A command sharing a prefix of at least 2 letters, or the reverse:
   * cheap and enough for typos such as "modles" -> "modules". */
  for (guint i = 0; i < G_N_ELEMENTS (commands); i++) {
    const char *c = commands[i].name;
    guint k = 0;
    while (c[k] && name[k] && c[k] == name[k])
      k++;
    if (k >= 2 && k > best_score) {
      best = c;
      best_score = k;
    }
  }
  return best;
}

int
main (int argc, char **argv)
{
  NnctlGlobal g = { .threads = -1 };
  gboolean help = FALSE, version = FALSE;
  GError *err = NULL;
  int rc;
  const GOptionEntry entries[] = {
    { "plugin-path", 'P', 0, G_OPTION_ARG_FILENAME_ARRAY, &g.plugin_paths,
      "Load plugins from DIR first (repeatable)", "DIR" },
    { "threads", 't', 0, G_OPTION_ARG_INT, &g.threads,
      "Threads for the forward pass (default: NN_NUM_THREADS or all cores)",
      "N" },
    { "quiet", 'q', 0, G_OPTION_ARG_NONE, &g.quiet,
      "Print no informational lines, only results and errors", NULL },
    { "version", 0, 0, G_OPTION_ARG_NONE, &version, "Print the version",
      NULL },
    { "help", 'h', 0, G_OPTION_ARG_NONE, &help, "Show this help", NULL },
    { NULL }
  };
  g_autofree char *summary = commands_summary ();
  g_autoptr (GOptionContext) ctx = NULL;

  setlocale (LC_ALL, "");
  /* Numbers in JSON and tables must not follow the user's locale. */
  setlocale (LC_NUMERIC, "C");
  g_set_prgname ("nnctl");

  ctx = g_option_context_new ("COMMAND [OPTIONS] ARGS");
  /* Stop at the command: what follows belongs to it. */
  g_option_context_set_strict_posix (ctx, TRUE);
  g_option_context_set_help_enabled (ctx, FALSE);
  g_option_context_set_summary (ctx, summary);
  g_option_context_set_description (ctx, global_description);
  g_option_context_add_main_entries (ctx, entries, NULL);

  if (!g_option_context_parse (ctx, &argc, &argv, &err)) {
    rc = nnctl_usage ("usage", "%s (see 'nnctl --help')", err->message);
    g_error_free (err);
    goto out;
  }
  if (version) {
    printf ("nnctl %s (plugin ABI %d.%d)\n", NNCTL_VERSION, NN_ABI_MAJOR,
            NN_ABI_MINOR);
    rc = NNCTL_EXIT_OK;
    goto out;
  }
  if (help || (argc > 1 && strcmp (argv[1], "help") == 0)) {
    rc = run_help_command (&g, argc, argv, ctx);
    goto out;
  }
  if (argc < 2) {
    rc = nnctl_usage ("usage", "no command given (see 'nnctl --help')");
    goto out;
  }
  if (g.threads != -1 && g.threads < 1) {
    rc = nnctl_usage ("usage", "--threads: expected N >= 1, found %d",
                      g.threads);
    goto out;
  }
  if (g.threads > 0)
    nn_set_num_threads (g.threads);

  const NnctlCommand *cmd = find_command (argv[1]);
  if (!cmd) {
    const char *near = closest_command (argv[1]);
    if (near)
      rc = nnctl_usage ("usage", "'%s' is not a command (did you mean "
                        "'%s'? see 'nnctl --help')", argv[1], near);
    else
      rc = nnctl_usage ("usage", "'%s' is not a command (see 'nnctl "
                        "--help')", argv[1]);
    goto out;
  }
  /* The command parses argv[1..]; the array is ours (GLib rearranged it). */
  rc = cmd->run (&g, cmd, argc - 1, argv + 1);

out:
  fflush (stdout);
  if (ferror (stdout) && rc == NNCTL_EXIT_OK)
    rc = nnctl_error ("stdout", "write failed");
  g_strfreev (g.plugin_paths);
  g_free (g.weights);
  g_free (g.weights_key);
  if (g.reg)
    nn_registry_unref (g.reg);
  return rc;
}
