/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The model's "AMD" root: an ARK and an ASK, RSA-2048 (the Naples sizes,
 * sev-firmware.md §2.1).  These keys are the model's published stand-ins for
 * AMD's, made with `openssl genrsa 2048` for this source tree: they are not
 * secrets and protect nothing.  Every modelled host's firmware trusts this
 * ARK as its fused root (§2.3), so a chain made by one host verifies in
 * another; the ASK signs each host's CEK (§3).
 */
#include <openssl/bio.h>
#include <openssl/pem.h>

#include "internal.h"

/* §2.4: a KEY_ID per key; the firmware finds its root by the ARK's. */
const uint8_t sim__ark_key_id[16] = { 0xd5, 0xa2, 0xcf, 0xdf, 0x30, 0x20, 0x8c, 0xcd,
				      0x3b, 0x29, 0x1e, 0xae, 0x0c, 0x0e, 0xf5, 0x06 };
const uint8_t sim__ask_key_id[16] = { 0x40, 0x96, 0xad, 0x63, 0x26, 0x44, 0x50, 0x06,
				      0xa9, 0xd8, 0xa9, 0x2d, 0xc1, 0x5a, 0x96, 0x27 };

static const char ark_pem[] =
	"-----BEGIN PRIVATE KEY-----\n"
	"MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDMEWkTV8QArhyB\n"
	"ikDnI3iiwhPUPpciRjMvE1yK3ZZysnMHe/jKw9AThrD++5bBvpcDMI6WXXjFvgd7\n"
	"dStXpTcgpxN5A6qz/s6pNgGhF+9SRmtWXCwTt4nBNDOOZ66YKFpigHqkbg3cieyF\n"
	"WypwpMlzzjPg8C8442B9FIvHFID0jfzboI/p2LdjTDwZ5EFc+T02SKHV0x5EtaNT\n"
	"MDwHUEoBC47QJDAGVXuh4h7mzGF+B0FGn6saH5UTPWjRYQXP5v214G2tyl7zKkoF\n"
	"ylPcS0G1J6iQ3z59+XSuMOSu60wlDcE4banxLizYibdpt5CTAWN1eqxbJJ98wWnv\n"
	"hgjnPT2lAgMBAAECggEAKe272rMSPReJGN6otjUWEM7ylw3jLLIiyx3dylR8GIXs\n"
	"15FTzYmNI63tiP51e8pmqcucyG1dJrgEPowVAzWZjZZ2jEtCFCibGq5TiF9sF0oL\n"
	"vNtEXSq9XZqVq0FHYNENvSZrzIQmSfV2yPGx1yIsmCQ6iZGgCj7BsQF7NMTUOCrj\n"
	"zpqZqbod0CP4ABKXdISVFO5P+fi++SXSg/L+Ciq1sWWFJDTdbE4mToI7yfM7NdzG\n"
	"/k6SrwidDLCP9SYrifvxPE16a/RmYAX1ekzAxHswySBi6Ki5KrmMcovXPLkslVUd\n"
	"xwwGmXfu3Rr0zfwg8G90p1U0Pm02+OoAjZE9OwL+0QKBgQD/5AkwKFXAihk2DqVN\n"
	"nzvA5y8SsSTAVgWcB+4CvX2vRZ76SU1146EQwXMgNsblTYV7e0LhOqwnLAGmh2d9\n"
	"rjNwg7zzYLnny6ZMxFBQtgaAM095g/lqz6F7zxrqf9uZ+2HqCrNlQMd3wZBhWkB2\n"
	"xXGlFCYwq7Um0pa1z9lDpClkPQKBgQDMJ7YXdVFG3Pe+MGIam7MEkILWXVmuV/8Y\n"
	"K8tfkKoaXTfGXuU4jyK/tnSPQeWK6/Enj0ZzPqVEOWPEFN+AWl2bDPUas+azR6OF\n"
	"GQ29gXe/0ZNcfyK5Y5h8DJ9eTCQjFO0FALsj2zIRTfVzNMuxscwQzJ1o9NjuKcNn\n"
	"rU4sRXWNiQKBgQDTvgh0VwwOVLfj6V6Tyo2RZDuphffZR9VAdbdXgSF9ZWjVxs5Y\n"
	"HNHsoYb4Qxt2Jx2rPiXrZbeKenmrKSRT9VAPbJNv+LwcuIGVyGSFRPpAHzVGYhSD\n"
	"c+g2IPwuyzoWQtOU7OHhiScFS6CDTkFFhsAxT2kCoTM3Os8HB0TLGg4+KQKBgQC3\n"
	"+02xhEtz1iz52/Z9TjWddnJCpyvr32eHq+gCvoddbQaXoetm9i91oAMZG2S2tnzE\n"
	"ju0JbLpZanLLQZhNvqI+2gWFQ/0zMeteRj7IuoVle4QWxohPlD7WBDYXL/0dFH2p\n"
	"lYgQ/zf2uk/pu/mZsMZbmVp+PLHGqCJuK5OYeBxBKQKBgD07DWI1EaFf7jZaWlof\n"
	"iKyWQl6+04VGUjIFfmMUg0BO0UAsFwUJiNh+cDC1TEQYIUfRCo3IulZrjvDWsgnB\n"
	"oKppnKPl6gtpK7O38ZbxX3VdHkC/B+sVCdvA5pZmIYb73j94H2i+Nwmo+wwRP7Mt\n"
	"r/wNPwSe9WSzG6gEEXDIEgN5\n"
	"-----END PRIVATE KEY-----\n";

static const char ask_pem[] =
	"-----BEGIN PRIVATE KEY-----\n"
	"MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDoR9bru1pmiVyb\n"
	"ZE2t1dSOQTuDqVYhpeN8/Lk1HVHhBSEKEr3MjralFkS6ZFDg91aocM+ZH3Jp4tda\n"
	"OWZUjLVJZG8X6Mew0RbaH6/xU03wc9MUw7P9qdm5kL3qTbfehB5PIKsHVaapaLnk\n"
	"Z//XlQyWJ628YjuFLzAW7fP4ohF5RyM0f0E1nEYmAE/z1wU+6zHq3b3uu6C9B4rC\n"
	"x0CltYa/OLtg49tNrw3TWZDnuCNzCnxWYxjURpnNovXQL31Q4UETn2n0UnK5Yg6c\n"
	"UMOc5yW7StYI2KCZx/O/Jk/YIvA/YelKUEVCal6Rp7oo42ZaAqeILVeb/U3q9LVA\n"
	"A6BSQO3HAgMBAAECggEAJrFY3tnNvEjjcUsrGWsGRlAdftglbeN5Wqeqnmts6UP2\n"
	"dfwbO8kGKcfk2Pu+8UqiV9q66jHv2C2eW/w1zJ3H0Rr22o+/O/gIi3s9zsBmukhB\n"
	"ADN9dyLlDuFKkY4ys9FkTyAM/WLKKWw1kxOz7ZB5kUW4zim66nuq0hb/TgqJSJ88\n"
	"viC2ksowOKJFNxSyypAZPBJidQPyQuokpkUVrLi/StseSmdyxsRD2nmPqHGhm8XI\n"
	"lnsuQg2fVi36igtkXgv3AXnAuNoFQWk9JtC7AvJQ91JsoGPkZKya0910PWBJZ+Mt\n"
	"lPvBU1u+KIlF77Gy7zXKTZptdALr68wr1wmSxXn3gQKBgQD5RUGyzK84foFf5LdZ\n"
	"3EBkCm5SKgP9h9etOMQkHF3O+VRgBiAjcQOFgqO1WNAuYHx6GHQomTUvK7/DP4Sy\n"
	"aK99Opo7z4wUEELZIO9JelwVWw5yz+VDNbI+vlqh+w461FxXKpdX8Yq6JXxP4/Jl\n"
	"8S3DkFTMMIuckcc/UohniDvsBwKBgQDujSnLlAg1MdBbx1Km7IHFpFG4poc1HWZH\n"
	"YZdWjjXVMC4CQcv33+G1yk+FK2cBocyuZzXPNUdddVNjJvsrHFaycBCwfHWPSP15\n"
	"oBsP0lxytXddXUkUEvLxX/6iAIZBzp9LuWdQn2GolwyFVLtJgRXDgSxmN96YN4Zv\n"
	"6254PiYAQQKBgQCiMWktQTfmB5KA5d5TrxeKwKrF9abBCenRQXWGlZqIeP1oubOh\n"
	"vABxl+6TqiVTd96mx1CVthLADbRqA+OA/tLpJf+DWWmpCGemxmJMqjxOfQAqvpFL\n"
	"qR3A67UnXqcEqncnFISDaZw9wPRhO03W/RYtALXcYt4E02oVDsvIqgFrcwKBgQCZ\n"
	"ybOqJLLt6EFVCbkFF+/JhNeSXPlJiryHRCkWifO2jqr6lYRzNogCdHyzc3mimbak\n"
	"sLEF9mkdnSe3AkhmUIyr2IdJ39LCHuIaaNdJaepjoQ1kyWD1agnpBmPX+NKU1inn\n"
	"3Yz3cui4kThnNGrRRkDLmxkOhPIh25n1ySecqSRCgQKBgAaC7G4zTG5vXaXsViWd\n"
	"j+HdcH34oj0EKP6ArHSXNMl3E6nOZbzecGVP7h60pJWycagVBaFdFtECavm46Ng0\n"
	"nSJdJIZvtuXv3IvVM6NSZM9ootJhZ1jwE5XxI7NCvBhgJeGbeF2ZYmQEyLnDKnH8\n"
	"cMydTAksxSPkqIaNaryqUr9j\n"
	"-----END PRIVATE KEY-----\n";

EVP_PKEY *sim__amd_root_key(bool ask)
{
	BIO *b = BIO_new_mem_buf(ask ? ask_pem : ark_pem, -1);
	EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;

	BIO_free(b);
	return k;
}
