/* Firmware kinds by DHCP option 93 and the iPXE binary each gets. */
#include "netsvc.h"

#include <string.h>

const struct netsvc_firmware netsvc_firmwares[] = {
    {"bios", 0, "x86PC", "x86 BIOS (undionly.kpxe)"},
    {"efi64", 7, "X86-64_EFI", "x86-64 UEFI (ipxe.efi)"},
    {"efi64", 9, "BC_EFI", "x86-64 UEFI, EBC id (ipxe.efi)"},
};
const size_t netsvc_nfirmwares = sizeof netsvc_firmwares / sizeof netsvc_firmwares[0];

const char *netsvc_firmware_binary(const struct lab *lab, const char *tag)
{
    if (!strcmp(tag, "bios"))
        return lab->lan.ipxe_bios;
    if (!strcmp(tag, "efi64"))
        return lab->lan.ipxe_efi;
    return NULL;
}
