"""F13 partners: core's voucher services, the 省级凭证库, the 医税平台 (``client``)."""
