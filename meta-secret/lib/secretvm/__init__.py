# meta-secret's Python library (`addpylib ${LAYERDIR}/lib secretvm` in conf/layer.conf).
