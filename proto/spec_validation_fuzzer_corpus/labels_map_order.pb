

Wresnet20j
tXXXXXXX0j

tsXXXXXXXXXX?