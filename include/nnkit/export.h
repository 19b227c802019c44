/* nnkit: symbol visibility and ABI version. */
#ifndef NNKIT_EXPORT_H
#define NNKIT_EXPORT_H

/* Everything is hidden by default (-fvisibility=hidden); NN_API marks the
 * public surface of libnnkit so plugins and tools can link against it. */
#if defined(__GNUC__)
#define NN_API __attribute__ ((visibility ("default")))
#else
#define NN_API
#endif

/* Plugin ABI.  A plugin is accepted when its major equals NN_ABI_MAJOR and
 * its minor is not newer than NN_ABI_MINOR: older minors only lack slots
 * that were appended later, which the core detects through struct_size. */
#define NN_ABI_MAJOR 2
#define NN_ABI_MINOR 0

#endif
