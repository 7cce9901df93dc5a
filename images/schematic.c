/* Schematic ids. */
#include "images.h"

#include <string.h>

int images_schematic_id(const struct lab *lab, char out[65], struct bd_err *err)
{
    if (!lab->images.schematic_file) {
        memcpy(out, IMAGES_VANILLA_SCHEMATIC, 65);
        return 0;
    }
    return bd_err_set(err, "%s: custom schematics are not supported yet",
                      lab->images.schematic_file);
}
