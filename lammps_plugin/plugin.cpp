// Registers pair_style xtalnn with LAMMPS (`plugin load xtalnnplugin.so` or LAMMPS_PLUGIN_PATH).
#include "lammpsplugin.h"
#include "pair_xtalnn.h"

using namespace LAMMPS_NS;

static Pair *create_pair_xtalnn(LAMMPS *lmp) { return new PairXtalnn(lmp); }

extern "C" void lammpsplugin_init(void *lmp, void *handle, void *regfunc) {
  lammpsplugin_t plugin;
  plugin.version = XTALNN_LAMMPS_VERSION;
  plugin.style = "pair";
  plugin.name = "xtalnn";
  plugin.info = "xtalnn neural-network potential (TorchScript model file from `xtalnn export`)";
  plugin.author = "xtalnn developers";
  plugin.creator.v1 = (lammpsplugin_factory1 *)&create_pair_xtalnn;
  plugin.handle = handle;
  (*(lammpsplugin_regfunc)regfunc)(&plugin, lmp);
}
