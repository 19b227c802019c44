/* nnkit: umbrella header for applications.  Plugin authors include
 * <nnkit/plugin.h> as well. */
#ifndef NNKIT_H
#define NNKIT_H

#include <nnkit/export.h>
#include <nnkit/error.h>
#include <nnkit/tensor.h>
#include <nnkit/value.h>
#include <nnkit/schema.h>
#include <nnkit/registry.h>
#include <nnkit/module.h>
#include <nnkit/runtime.h>
#include <nnkit/hooks.h>
#include <nnkit/descriptor.h>
#include <nnkit/weights.h>
#include <nnkit/surgery.h>
#include <nnkit/cpu.h>
#include <nnkit/blas.h>
#include <nnkit/providers.h>
#include <nnkit/train.h>

#endif
