
lenet5
fashion-mnist @(2		š™™™™™©?