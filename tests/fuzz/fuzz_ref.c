/* libFuzzer target: module references as nnctl takes them ("layer2.0.conv1",
 * "#17", "features[-1]", "fc.weight") on a fixed resnet-like tree. */
#include <nnkit/nnkit.h>

#include <stdlib.h>

static const char *kTree =
  "{\"format\": \"nnkit\", \"version\": 1, \"model\": {\"type\": \"Sequential\", "
  "\"children\": [{\"name\": \"conv\", \"type\": \"Conv2d\", \"config\": "
  "{\"in_channels\": 1, \"out_channels\": 2, \"kernel_size\": 1}}, "
  "{\"name\": \"layers\", \"type\": \"ModuleList\", \"children\": ["
  "{\"name\": \"0\", \"type\": \"ReLU\"}, {\"name\": \"1\", \"type\": "
  "\"Sequential\", \"children\": [{\"name\": \"0\", \"type\": \"Identity\"}]}]}, "
  "{\"name\": \"again\", \"ref\": \"conv\"}]}}";

static NnModule *
tree (void)
{
  static NnModule *root;
  if (!root) {
    NnRegistry *reg = nn_registry_new ();
    if (!nn_registry_load_default (reg, NULL))
      abort ();
    root = nn_descriptor_load_data (reg, kTree, -1, "tree", NULL);
    if (!root)
      abort ();
  }
  return root;
}

int
LLVMFuzzerTestOneInput (const unsigned char *data, size_t size)
{
  char *ref = g_strndup ((const char *) data, size);
  GError *error = NULL;
  char *path = NULL;
  NnModule *m = nn_module_lookup_ref (tree (), ref, &path, &error);
  g_clear_error (&error);
  g_free (path);
  (void) m;
  NnTensor *t = nn_module_lookup_tensor (tree (), ref, &error);
  (void) t;
  g_clear_error (&error);
  g_free (ref);
  return 0;
}
