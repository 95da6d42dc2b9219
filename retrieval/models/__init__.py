"""Which models run and where: the CLIP encoder, devices, model profiles and the tiny random-weight builders."""
