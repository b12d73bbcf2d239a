	
alexnet
cifar10/data/cifar(2		{®Gáz„?:
š™™™™™¹?BRR 