module kiln.test/gohello

go 1.19
